// Original file: protos/roadwork/v1/router.proto

import type { ObjectCount as _roadwork_v1_ObjectCount, ObjectCount__Output as _roadwork_v1_ObjectCount__Output } from '../../roadwork/v1/ObjectCount';

export interface AnswerVerdict {
  'roadwork'?: (boolean);
  'active'?: (boolean);
  'objects'?: (_roadwork_v1_ObjectCount)[];
  'lanes_affected'?: (number);
  'confidence'?: (number | string);
  'merged_probability'?: (number | string);
  'merged_roadwork'?: (boolean);
  'agrees_with_detection'?: (boolean);
}

export interface AnswerVerdict__Output {
  'roadwork': (boolean);
  'active': (boolean);
  'objects': (_roadwork_v1_ObjectCount__Output)[];
  'lanes_affected': (number);
  'confidence': (number);
  'merged_probability': (number);
  'merged_roadwork': (boolean);
  'agrees_with_detection': (boolean);
}
