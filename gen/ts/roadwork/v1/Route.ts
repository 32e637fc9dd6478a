// Original file: protos/roadwork/v1/router.proto

import type { RequestKind as _roadwork_v1_RequestKind, RequestKind__Output as _roadwork_v1_RequestKind__Output } from '../../roadwork/v1/RequestKind';
import type { Migration as _roadwork_v1_Migration, Migration__Output as _roadwork_v1_Migration__Output } from '../../roadwork/v1/Migration';
import type { Engine as _roadwork_v1_Engine, Engine__Output as _roadwork_v1_Engine__Output } from '../../roadwork/v1/Engine';

export interface Route {
  'kind'?: (_roadwork_v1_RequestKind);
  'pool'?: (string);
  'replica'?: (string);
  'model'?: (string);
  'fallback_from'?: (string)[];
  'migrations'?: (_roadwork_v1_Migration)[];
  'engine'?: (_roadwork_v1_Engine);
}

export interface Route__Output {
  'kind': (_roadwork_v1_RequestKind__Output);
  'pool': (string);
  'replica': (string);
  'model': (string);
  'fallback_from': (string)[];
  'migrations': (_roadwork_v1_Migration__Output)[];
  'engine': (_roadwork_v1_Engine__Output);
}
