// Original file: protos/roadwork/v1/router.proto

import type { BreakerState as _roadwork_v1_BreakerState, BreakerState__Output as _roadwork_v1_BreakerState__Output } from '../../roadwork/v1/BreakerState';

export interface ReplicaStatus {
  'name'?: (string);
  'healthy'?: (boolean);
  'breaker'?: (_roadwork_v1_BreakerState);
  'breaker_retry_in_seconds'?: (number | string);
  'in_flight'?: (number);
  'queued_interactive'?: (number);
  'queued_batch'?: (number);
  'load'?: (number);
  'bulk_in_flight'?: (number);
  'bulk_window'?: (number);
}

export interface ReplicaStatus__Output {
  'name': (string);
  'healthy': (boolean);
  'breaker': (_roadwork_v1_BreakerState__Output);
  'breaker_retry_in_seconds': (number);
  'in_flight': (number);
  'queued_interactive': (number);
  'queued_batch': (number);
  'load': (number);
  'bulk_in_flight': (number);
  'bulk_window': (number);
}
