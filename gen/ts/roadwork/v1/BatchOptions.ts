// Original file: protos/roadwork/v1/router.proto

import type { GenerationOptions as _roadwork_v1_GenerationOptions, GenerationOptions__Output as _roadwork_v1_GenerationOptions__Output } from '../../roadwork/v1/GenerationOptions';
import type { AnswerFormat as _roadwork_v1_AnswerFormat, AnswerFormat__Output as _roadwork_v1_AnswerFormat__Output } from '../../roadwork/v1/AnswerFormat';
import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration';

export interface BatchOptions {
  'default_question'?: (string);
  'display_name'?: (string);
  'generation'?: (_roadwork_v1_GenerationOptions | null);
  'detect_only'?: (boolean);
  'format'?: (_roadwork_v1_AnswerFormat);
  'item_timeout'?: (_google_protobuf_Duration | null);
}

export interface BatchOptions__Output {
  'default_question': (string);
  'display_name': (string);
  'generation': (_roadwork_v1_GenerationOptions__Output | null);
  'detect_only': (boolean);
  'format': (_roadwork_v1_AnswerFormat__Output);
  'item_timeout': (_google_protobuf_Duration__Output | null);
}
