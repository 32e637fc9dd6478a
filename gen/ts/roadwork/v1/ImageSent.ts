// Original file: protos/roadwork/v1/router.proto


export interface ImageSent {
  'width'?: (number);
  'height'?: (number);
  'image_tokens'?: (number);
  'image_tokens_reported'?: (boolean);
  'bytes'?: (number);
  'resized'?: (boolean);
  'source_width'?: (number);
  'source_height'?: (number);
}

export interface ImageSent__Output {
  'width': (number);
  'height': (number);
  'image_tokens': (number);
  'image_tokens_reported': (boolean);
  'bytes': (number);
  'resized': (boolean);
  'source_width': (number);
  'source_height': (number);
}
