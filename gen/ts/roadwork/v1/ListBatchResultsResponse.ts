// Original file: protos/roadwork/v1/router.proto

import type { BatchItemResult as _roadwork_v1_BatchItemResult, BatchItemResult__Output as _roadwork_v1_BatchItemResult__Output } from '../../roadwork/v1/BatchItemResult';

export interface ListBatchResultsResponse {
  'result'?: (_roadwork_v1_BatchItemResult | null);
}

export interface ListBatchResultsResponse__Output {
  'result': (_roadwork_v1_BatchItemResult__Output | null);
}
