// Original file: protos/roadwork/v1/router.proto

import type { Box as _roadwork_v1_Box, Box__Output as _roadwork_v1_Box__Output } from '../../roadwork/v1/Box';
import type { VoteStatus as _roadwork_v1_VoteStatus, VoteStatus__Output as _roadwork_v1_VoteStatus__Output } from '../../roadwork/v1/VoteStatus';
import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration';

export interface DetectorVote {
  'detector'?: (string);
  'roadwork'?: (boolean);
  'confidence'?: (number | string);
  'weight'?: (number | string);
  'boxes'?: (_roadwork_v1_Box)[];
  'status'?: (_roadwork_v1_VoteStatus);
  'error'?: (string);
  'latency'?: (_google_protobuf_Duration | null);
}

export interface DetectorVote__Output {
  'detector': (string);
  'roadwork': (boolean);
  'confidence': (number);
  'weight': (number);
  'boxes': (_roadwork_v1_Box__Output)[];
  'status': (_roadwork_v1_VoteStatus__Output);
  'error': (string);
  'latency': (_google_protobuf_Duration__Output | null);
}
