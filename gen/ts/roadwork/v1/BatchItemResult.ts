// Original file: protos/roadwork/v1/router.proto

import type { ItemStatus as _roadwork_v1_ItemStatus, ItemStatus__Output as _roadwork_v1_ItemStatus__Output } from '../../roadwork/v1/ItemStatus';
import type { Detection as _roadwork_v1_Detection, Detection__Output as _roadwork_v1_Detection__Output } from '../../roadwork/v1/Detection';
import type { Route as _roadwork_v1_Route, Route__Output as _roadwork_v1_Route__Output } from '../../roadwork/v1/Route';
import type { Usage as _roadwork_v1_Usage, Usage__Output as _roadwork_v1_Usage__Output } from '../../roadwork/v1/Usage';
import type { Cost as _roadwork_v1_Cost, Cost__Output as _roadwork_v1_Cost__Output } from '../../roadwork/v1/Cost';
import type { AnswerVerdict as _roadwork_v1_AnswerVerdict, AnswerVerdict__Output as _roadwork_v1_AnswerVerdict__Output } from '../../roadwork/v1/AnswerVerdict';
import type { ImageSent as _roadwork_v1_ImageSent, ImageSent__Output as _roadwork_v1_ImageSent__Output } from '../../roadwork/v1/ImageSent';
import type { Status as _google_rpc_Status, Status__Output as _google_rpc_Status__Output } from '../../google/rpc/Status';

export interface BatchItemResult {
  'index'?: (number);
  'item_id'?: (string);
  'status'?: (_roadwork_v1_ItemStatus);
  'detection'?: (_roadwork_v1_Detection | null);
  'answer'?: (string);
  'route'?: (_roadwork_v1_Route | null);
  'usage'?: (_roadwork_v1_Usage | null);
  'cost'?: (_roadwork_v1_Cost | null);
  'degraded'?: (boolean);
  'verdict'?: (_roadwork_v1_AnswerVerdict | null);
  'image'?: (_roadwork_v1_ImageSent | null);
  'error'?: (_google_rpc_Status | null);
}

export interface BatchItemResult__Output {
  'index': (number);
  'item_id': (string);
  'status': (_roadwork_v1_ItemStatus__Output);
  'detection': (_roadwork_v1_Detection__Output | null);
  'answer': (string);
  'route': (_roadwork_v1_Route__Output | null);
  'usage': (_roadwork_v1_Usage__Output | null);
  'cost': (_roadwork_v1_Cost__Output | null);
  'degraded': (boolean);
  'verdict': (_roadwork_v1_AnswerVerdict__Output | null);
  'image': (_roadwork_v1_ImageSent__Output | null);
  'error': (_google_rpc_Status__Output | null);
}
