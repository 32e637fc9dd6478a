// Original file: protos/roadwork/v1/router.proto

import type { Route as _roadwork_v1_Route, Route__Output as _roadwork_v1_Route__Output } from '../../roadwork/v1/Route';
import type { Usage as _roadwork_v1_Usage, Usage__Output as _roadwork_v1_Usage__Output } from '../../roadwork/v1/Usage';
import type { Cost as _roadwork_v1_Cost, Cost__Output as _roadwork_v1_Cost__Output } from '../../roadwork/v1/Cost';
import type { ImageSent as _roadwork_v1_ImageSent, ImageSent__Output as _roadwork_v1_ImageSent__Output } from '../../roadwork/v1/ImageSent';
import type { AnswerVerdict as _roadwork_v1_AnswerVerdict, AnswerVerdict__Output as _roadwork_v1_AnswerVerdict__Output } from '../../roadwork/v1/AnswerVerdict';
import type { FinishReason as _roadwork_v1_FinishReason, FinishReason__Output as _roadwork_v1_FinishReason__Output } from '../../roadwork/v1/FinishReason';
import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration';

export interface AskDoneEvent {
  'answer'?: (string);
  'route'?: (_roadwork_v1_Route | null);
  'usage'?: (_roadwork_v1_Usage | null);
  'cost'?: (_roadwork_v1_Cost | null);
  'degraded'?: (boolean);
  'notices'?: (string)[];
  'session_id'?: (string);
  'image'?: (_roadwork_v1_ImageSent | null);
  'verdict'?: (_roadwork_v1_AnswerVerdict | null);
  'finish_reason'?: (_roadwork_v1_FinishReason);
  'detection_time'?: (_google_protobuf_Duration | null);
  'time_to_first_token'?: (_google_protobuf_Duration | null);
  'total_time'?: (_google_protobuf_Duration | null);
}

export interface AskDoneEvent__Output {
  'answer': (string);
  'route': (_roadwork_v1_Route__Output | null);
  'usage': (_roadwork_v1_Usage__Output | null);
  'cost': (_roadwork_v1_Cost__Output | null);
  'degraded': (boolean);
  'notices': (string)[];
  'session_id': (string);
  'image': (_roadwork_v1_ImageSent__Output | null);
  'verdict': (_roadwork_v1_AnswerVerdict__Output | null);
  'finish_reason': (_roadwork_v1_FinishReason__Output);
  'detection_time': (_google_protobuf_Duration__Output | null);
  'time_to_first_token': (_google_protobuf_Duration__Output | null);
  'total_time': (_google_protobuf_Duration__Output | null);
}
