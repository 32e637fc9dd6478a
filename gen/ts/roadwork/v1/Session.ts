// Original file: protos/roadwork/v1/router.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';

export interface Session {
  'session_id'?: (string);
  'image_sha256'?: (string);
  'turns'?: (number);
  'created_at'?: (_google_protobuf_Timestamp | null);
  'expires_at'?: (_google_protobuf_Timestamp | null);
}

export interface Session__Output {
  'session_id': (string);
  'image_sha256': (string);
  'turns': (number);
  'created_at': (_google_protobuf_Timestamp__Output | null);
  'expires_at': (_google_protobuf_Timestamp__Output | null);
}
