// Original file: protos/roadwork/v1/router.proto


export interface RetryingProgress {
  'pool'?: (string);
  'replica'?: (string);
  'reason'?: (string);
  'next_attempt'?: (number);
}

export interface RetryingProgress__Output {
  'pool': (string);
  'replica': (string);
  'reason': (string);
  'next_attempt': (number);
}
