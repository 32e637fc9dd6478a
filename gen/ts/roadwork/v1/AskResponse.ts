// Original file: protos/roadwork/v1/router.proto

import type { AskDetectionEvent as _roadwork_v1_AskDetectionEvent, AskDetectionEvent__Output as _roadwork_v1_AskDetectionEvent__Output } from '../../roadwork/v1/AskDetectionEvent';
import type { AskDeltaEvent as _roadwork_v1_AskDeltaEvent, AskDeltaEvent__Output as _roadwork_v1_AskDeltaEvent__Output } from '../../roadwork/v1/AskDeltaEvent';
import type { AskDoneEvent as _roadwork_v1_AskDoneEvent, AskDoneEvent__Output as _roadwork_v1_AskDoneEvent__Output } from '../../roadwork/v1/AskDoneEvent';

export interface AskResponse {
  'detection'?: (_roadwork_v1_AskDetectionEvent | null);
  'delta'?: (_roadwork_v1_AskDeltaEvent | null);
  'done'?: (_roadwork_v1_AskDoneEvent | null);
  'event'?: "detection"|"delta"|"done";
}

export interface AskResponse__Output {
  'detection'?: (_roadwork_v1_AskDetectionEvent__Output | null);
  'delta'?: (_roadwork_v1_AskDeltaEvent__Output | null);
  'done'?: (_roadwork_v1_AskDoneEvent__Output | null);
  'event'?: "detection"|"delta"|"done";
}
