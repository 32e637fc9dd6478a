// Original file: protos/roadwork/v1/router.proto


export interface Cost {
  'prompt_usd'?: (number | string);
  'completion_usd'?: (number | string);
  'total_usd'?: (number | string);
}

export interface Cost__Output {
  'prompt_usd': (number);
  'completion_usd': (number);
  'total_usd': (number);
}
