// Original file: protos/roadwork/v1/router.proto

import type { Detection as _roadwork_v1_Detection, Detection__Output as _roadwork_v1_Detection__Output } from '../../roadwork/v1/Detection';

export interface DetectResponse {
  'detection'?: (_roadwork_v1_Detection | null);
}

export interface DetectResponse__Output {
  'detection': (_roadwork_v1_Detection__Output | null);
}
