// Original file: protos/roadwork/v1/router.proto


export interface Usage {
  'prompt_tokens'?: (number);
  'completion_tokens'?: (number);
  'cached_tokens'?: (number);
}

export interface Usage__Output {
  'prompt_tokens': (number);
  'completion_tokens': (number);
  'cached_tokens': (number);
}
