// Original file: protos/roadwork/v1/router.proto


export interface DispatchedProgress {
  'pool'?: (string);
  'replica'?: (string);
  'attempt'?: (number);
}

export interface DispatchedProgress__Output {
  'pool': (string);
  'replica': (string);
  'attempt': (number);
}
