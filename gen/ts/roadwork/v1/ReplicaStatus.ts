// Original file: protos/roadwork/v1/router.proto

import type { BreakerState as _roadwork_v1_BreakerState, BreakerState__Output as _roadwork_v1_BreakerState__Output } from '../../roadwork/v1/BreakerState';
import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration';

export interface ReplicaStatus {
  'name'?: (string);
  'healthy'?: (boolean);
  'breaker'?: (_roadwork_v1_BreakerState);
  'in_flight'?: (number);
  'queued_interactive'?: (number);
  'queued_batch'?: (number);
  'load'?: (number);
  'bulk_in_flight'?: (number);
  'bulk_window'?: (number);
  'pools'?: (string)[];
  'breaker_retry_in'?: (_google_protobuf_Duration | null);
}

export interface ReplicaStatus__Output {
  'name': (string);
  'healthy': (boolean);
  'breaker': (_roadwork_v1_BreakerState__Output);
  'in_flight': (number);
  'queued_interactive': (number);
  'queued_batch': (number);
  'load': (number);
  'bulk_in_flight': (number);
  'bulk_window': (number);
  'pools': (string)[];
  'breaker_retry_in': (_google_protobuf_Duration__Output | null);
}
