// Original file: protos/roadwork/v1/router.proto

import type { GenerationOptions as _roadwork_v1_GenerationOptions, GenerationOptions__Output as _roadwork_v1_GenerationOptions__Output } from '../../roadwork/v1/GenerationOptions';
import type { AnswerFormat as _roadwork_v1_AnswerFormat, AnswerFormat__Output as _roadwork_v1_AnswerFormat__Output } from '../../roadwork/v1/AnswerFormat';

export interface AskRequest {
  'image'?: (Buffer | Uint8Array | string);
  'question'?: (string);
  'session_id'?: (string);
  'open_session'?: (boolean);
  'generation'?: (_roadwork_v1_GenerationOptions | null);
  'strict'?: (boolean);
  'format'?: (_roadwork_v1_AnswerFormat);
}

export interface AskRequest__Output {
  'image': (Buffer);
  'question': (string);
  'session_id': (string);
  'open_session': (boolean);
  'generation': (_roadwork_v1_GenerationOptions__Output | null);
  'strict': (boolean);
  'format': (_roadwork_v1_AnswerFormat__Output);
}
