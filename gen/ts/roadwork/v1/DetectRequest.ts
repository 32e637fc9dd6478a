// Original file: protos/roadwork/v1/router.proto


export interface DetectRequest {
  'image'?: (Buffer | Uint8Array | string);
}

export interface DetectRequest__Output {
  'image': (Buffer);
}
