// Original file: protos/roadwork/v1/router.proto

import type { BatchState as _roadwork_v1_BatchState, BatchState__Output as _roadwork_v1_BatchState__Output } from '../../roadwork/v1/BatchState';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';

export interface BatchJob {
  'job_id'?: (string);
  'state'?: (_roadwork_v1_BatchState);
  'display_name'?: (string);
  'total'?: (number);
  'pending'?: (number);
  'succeeded'?: (number);
  'failed'?: (number);
  'canceled'?: (number);
  'created_at'?: (_google_protobuf_Timestamp | null);
  'updated_at'?: (_google_protobuf_Timestamp | null);
  'detect_only'?: (boolean);
}

export interface BatchJob__Output {
  'job_id': (string);
  'state': (_roadwork_v1_BatchState__Output);
  'display_name': (string);
  'total': (number);
  'pending': (number);
  'succeeded': (number);
  'failed': (number);
  'canceled': (number);
  'created_at': (_google_protobuf_Timestamp__Output | null);
  'updated_at': (_google_protobuf_Timestamp__Output | null);
  'detect_only': (boolean);
}
