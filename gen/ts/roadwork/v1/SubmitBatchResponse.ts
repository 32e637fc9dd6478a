// Original file: protos/roadwork/v1/router.proto

import type { BatchJob as _roadwork_v1_BatchJob, BatchJob__Output as _roadwork_v1_BatchJob__Output } from '../../roadwork/v1/BatchJob';

export interface SubmitBatchResponse {
  'job'?: (_roadwork_v1_BatchJob | null);
}

export interface SubmitBatchResponse__Output {
  'job': (_roadwork_v1_BatchJob__Output | null);
}
