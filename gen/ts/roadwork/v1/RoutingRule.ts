// Original file: protos/roadwork/v1/router.proto

import type { RequestKind as _roadwork_v1_RequestKind, RequestKind__Output as _roadwork_v1_RequestKind__Output } from '../../roadwork/v1/RequestKind';

export interface RoutingRule {
  'kind'?: (_roadwork_v1_RequestKind);
  'pools'?: (string)[];
}

export interface RoutingRule__Output {
  'kind': (_roadwork_v1_RequestKind__Output);
  'pools': (string)[];
}
