// Original file: protos/roadwork/v1/router.proto


export interface WatchBatchRequest {
  'job_id'?: (string);
}

export interface WatchBatchRequest__Output {
  'job_id': (string);
}
