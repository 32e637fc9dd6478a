// Original file: protos/roadwork/v1/router.proto

import type { BatchJob as _roadwork_v1_BatchJob, BatchJob__Output as _roadwork_v1_BatchJob__Output } from '../../roadwork/v1/BatchJob';

export interface ListBatchesResponse {
  'jobs'?: (_roadwork_v1_BatchJob)[];
  'next_page_token'?: (string);
}

export interface ListBatchesResponse__Output {
  'jobs': (_roadwork_v1_BatchJob__Output)[];
  'next_page_token': (string);
}
