// Original file: protos/roadwork/v1/router.proto

import type { BreakerState as _roadwork_v1_BreakerState, BreakerState__Output as _roadwork_v1_BreakerState__Output } from '../../roadwork/v1/BreakerState';
import type { ReplicaStatus as _roadwork_v1_ReplicaStatus, ReplicaStatus__Output as _roadwork_v1_ReplicaStatus__Output } from '../../roadwork/v1/ReplicaStatus';

export interface PoolStatus {
  'name'?: (string);
  'engine'?: (string);
  'policy'?: (string);
  'breaker'?: (_roadwork_v1_BreakerState);
  'breaker_retry_in_seconds'?: (number | string);
  'replicas'?: (_roadwork_v1_ReplicaStatus)[];
}

export interface PoolStatus__Output {
  'name': (string);
  'engine': (string);
  'policy': (string);
  'breaker': (_roadwork_v1_BreakerState__Output);
  'breaker_retry_in_seconds': (number);
  'replicas': (_roadwork_v1_ReplicaStatus__Output)[];
}
