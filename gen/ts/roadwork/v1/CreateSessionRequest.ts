// Original file: protos/roadwork/v1/router.proto


export interface CreateSessionRequest {
  'image'?: (Buffer | Uint8Array | string);
  'ttl_seconds'?: (number);
}

export interface CreateSessionRequest__Output {
  'image': (Buffer);
  'ttl_seconds': (number);
}
