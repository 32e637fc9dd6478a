// Original file: protos/roadwork/v1/router.proto

import type { BatchState as _roadwork_v1_BatchState, BatchState__Output as _roadwork_v1_BatchState__Output } from '../../roadwork/v1/BatchState';

export interface ListBatchesRequest {
  'page_size'?: (number);
  'page_token'?: (string);
  'state'?: (_roadwork_v1_BatchState);
}

export interface ListBatchesRequest__Output {
  'page_size': (number);
  'page_token': (string);
  'state': (_roadwork_v1_BatchState__Output);
}
