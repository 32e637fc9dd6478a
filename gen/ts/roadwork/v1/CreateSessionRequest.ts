// Original file: protos/roadwork/v1/router.proto

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration';

export interface CreateSessionRequest {
  'image'?: (Buffer | Uint8Array | string);
  'ttl'?: (_google_protobuf_Duration | null);
}

export interface CreateSessionRequest__Output {
  'image': (Buffer);
  'ttl': (_google_protobuf_Duration__Output | null);
}
