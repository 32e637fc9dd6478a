// Original file: protos/roadwork/v1/router.proto

import type { RequestKind as _roadwork_v1_RequestKind, RequestKind__Output as _roadwork_v1_RequestKind__Output } from '../../roadwork/v1/RequestKind';
import type { Migration as _roadwork_v1_Migration, Migration__Output as _roadwork_v1_Migration__Output } from '../../roadwork/v1/Migration';

export interface Route {
  'kind'?: (_roadwork_v1_RequestKind);
  'pool'?: (string);
  'engine'?: (string);
  'replica'?: (string);
  'model'?: (string);
  'fallback_from'?: (string)[];
  'migrations'?: (_roadwork_v1_Migration)[];
}

export interface Route__Output {
  'kind': (_roadwork_v1_RequestKind__Output);
  'pool': (string);
  'engine': (string);
  'replica': (string);
  'model': (string);
  'fallback_from': (string)[];
  'migrations': (_roadwork_v1_Migration__Output)[];
}
