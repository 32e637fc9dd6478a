// Original file: protos/roadwork/v1/router.proto


export interface BatchItem {
  'image'?: (Buffer | Uint8Array | string);
  'question'?: (string);
  'item_id'?: (string);
}

export interface BatchItem__Output {
  'image': (Buffer);
  'question': (string);
  'item_id': (string);
}
