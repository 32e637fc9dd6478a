// Original file: protos/roadwork/v1/router.proto


export interface ListBatchResultsRequest {
  'job_id'?: (string);
  'offset'?: (number);
  'limit'?: (number);
  'follow'?: (boolean);
}

export interface ListBatchResultsRequest__Output {
  'job_id': (string);
  'offset': (number);
  'limit': (number);
  'follow': (boolean);
}
