// Original file: protos/roadwork/v1/router.proto


export interface AskDeltaEvent {
  'text'?: (string);
}

export interface AskDeltaEvent__Output {
  'text': (string);
}
