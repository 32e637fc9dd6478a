// Original file: protos/roadwork/v1/router.proto


export interface FallingBackProgress {
  'from_pool'?: (string);
  'reason'?: (string);
  'to_pool'?: (string);
}

export interface FallingBackProgress__Output {
  'from_pool': (string);
  'reason': (string);
  'to_pool': (string);
}
