// Original file: protos/roadwork/v1/router.proto

import type { AskDetectionEvent as _roadwork_v1_AskDetectionEvent, AskDetectionEvent__Output as _roadwork_v1_AskDetectionEvent__Output } from '../../roadwork/v1/AskDetectionEvent';
import type { AskDeltaEvent as _roadwork_v1_AskDeltaEvent, AskDeltaEvent__Output as _roadwork_v1_AskDeltaEvent__Output } from '../../roadwork/v1/AskDeltaEvent';
import type { AskDoneEvent as _roadwork_v1_AskDoneEvent, AskDoneEvent__Output as _roadwork_v1_AskDoneEvent__Output } from '../../roadwork/v1/AskDoneEvent';
import type { AskProgressEvent as _roadwork_v1_AskProgressEvent, AskProgressEvent__Output as _roadwork_v1_AskProgressEvent__Output } from '../../roadwork/v1/AskProgressEvent';

export interface AskResponse {
  'detected'?: (_roadwork_v1_AskDetectionEvent | null);
  'delta'?: (_roadwork_v1_AskDeltaEvent | null);
  'done'?: (_roadwork_v1_AskDoneEvent | null);
  'progress'?: (_roadwork_v1_AskProgressEvent | null);
  'event'?: "detected"|"delta"|"done"|"progress";
}

export interface AskResponse__Output {
  'detected'?: (_roadwork_v1_AskDetectionEvent__Output | null);
  'delta'?: (_roadwork_v1_AskDeltaEvent__Output | null);
  'done'?: (_roadwork_v1_AskDoneEvent__Output | null);
  'progress'?: (_roadwork_v1_AskProgressEvent__Output | null);
  'event'?: "detected"|"delta"|"done"|"progress";
}
