// Original file: protos/roadwork/v1/router.proto

import type { Detection as _roadwork_v1_Detection, Detection__Output as _roadwork_v1_Detection__Output } from '../../roadwork/v1/Detection';

export interface AskDetectionEvent {
  'detection'?: (_roadwork_v1_Detection | null);
  'session_id'?: (string);
}

export interface AskDetectionEvent__Output {
  'detection': (_roadwork_v1_Detection__Output | null);
  'session_id': (string);
}
