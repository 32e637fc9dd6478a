// Original file: protos/roadwork/v1/router.proto


export interface CloseSessionRequest {
  'session_id'?: (string);
}

export interface CloseSessionRequest__Output {
  'session_id': (string);
}
