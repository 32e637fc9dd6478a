// Original file: protos/roadwork/v1/router.proto


export interface CancelBatchRequest {
  'job_id'?: (string);
}

export interface CancelBatchRequest__Output {
  'job_id': (string);
}
