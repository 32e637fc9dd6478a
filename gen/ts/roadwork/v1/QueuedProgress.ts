// Original file: protos/roadwork/v1/router.proto


export interface QueuedProgress {
  'pool'?: (string);
  'replica'?: (string);
  'position'?: (number);
}

export interface QueuedProgress__Output {
  'pool': (string);
  'replica': (string);
  'position': (number);
}
