// Original file: protos/roadwork/v1/router.proto

import type { Session as _roadwork_v1_Session, Session__Output as _roadwork_v1_Session__Output } from '../../roadwork/v1/Session';

export interface CreateSessionResponse {
  'session'?: (_roadwork_v1_Session | null);
}

export interface CreateSessionResponse__Output {
  'session': (_roadwork_v1_Session__Output | null);
}
