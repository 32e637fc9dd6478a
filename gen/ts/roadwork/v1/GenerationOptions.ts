// Original file: protos/roadwork/v1/router.proto


export interface GenerationOptions {
  'max_tokens'?: (number);
  'temperature'?: (number | string);
  '_temperature'?: "temperature";
}

export interface GenerationOptions__Output {
  'max_tokens': (number);
  'temperature'?: (number);
  '_temperature'?: "temperature";
}
