// Original file: protos/roadwork/v1/router.proto


export interface Migration {
  'from_replica'?: (string);
  'to_pool'?: (string);
  'to_replica'?: (string);
  'tokens_kept'?: (number);
  'chars_kept'?: (number);
}

export interface Migration__Output {
  'from_replica': (string);
  'to_pool': (string);
  'to_replica': (string);
  'tokens_kept': (number);
  'chars_kept': (number);
}
