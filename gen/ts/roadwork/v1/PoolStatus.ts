// Original file: protos/roadwork/v1/router.proto

import type { BreakerState as _roadwork_v1_BreakerState, BreakerState__Output as _roadwork_v1_BreakerState__Output } from '../../roadwork/v1/BreakerState';
import type { Engine as _roadwork_v1_Engine, Engine__Output as _roadwork_v1_Engine__Output } from '../../roadwork/v1/Engine';
import type { RoutingPolicy as _roadwork_v1_RoutingPolicy, RoutingPolicy__Output as _roadwork_v1_RoutingPolicy__Output } from '../../roadwork/v1/RoutingPolicy';
import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration';

export interface PoolStatus {
  'name'?: (string);
  'breaker'?: (_roadwork_v1_BreakerState);
  'engine'?: (_roadwork_v1_Engine);
  'policy'?: (_roadwork_v1_RoutingPolicy);
  'breaker_retry_in'?: (_google_protobuf_Duration | null);
  'replicas'?: (string)[];
}

export interface PoolStatus__Output {
  'name': (string);
  'breaker': (_roadwork_v1_BreakerState__Output);
  'engine': (_roadwork_v1_Engine__Output);
  'policy': (_roadwork_v1_RoutingPolicy__Output);
  'breaker_retry_in': (_google_protobuf_Duration__Output | null);
  'replicas': (string)[];
}
