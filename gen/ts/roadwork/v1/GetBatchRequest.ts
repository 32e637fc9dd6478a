// Original file: protos/roadwork/v1/router.proto


export interface GetBatchRequest {
  'job_id'?: (string);
}

export interface GetBatchRequest__Output {
  'job_id': (string);
}
