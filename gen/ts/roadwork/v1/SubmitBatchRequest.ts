// Original file: protos/roadwork/v1/router.proto

import type { BatchOptions as _roadwork_v1_BatchOptions, BatchOptions__Output as _roadwork_v1_BatchOptions__Output } from '../../roadwork/v1/BatchOptions';
import type { BatchItem as _roadwork_v1_BatchItem, BatchItem__Output as _roadwork_v1_BatchItem__Output } from '../../roadwork/v1/BatchItem';

export interface SubmitBatchRequest {
  'options'?: (_roadwork_v1_BatchOptions | null);
  'item'?: (_roadwork_v1_BatchItem | null);
  'payload'?: "options"|"item";
}

export interface SubmitBatchRequest__Output {
  'options'?: (_roadwork_v1_BatchOptions__Output | null);
  'item'?: (_roadwork_v1_BatchItem__Output | null);
  'payload'?: "options"|"item";
}
