// Original file: protos/roadwork/v1/router.proto

import type { Verdict as _roadwork_v1_Verdict, Verdict__Output as _roadwork_v1_Verdict__Output } from '../../roadwork/v1/Verdict';
import type { DetectorVote as _roadwork_v1_DetectorVote, DetectorVote__Output as _roadwork_v1_DetectorVote__Output } from '../../roadwork/v1/DetectorVote';
import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration';

export interface Detection {
  'roadwork_probability'?: (number | string);
  'verdict'?: (_roadwork_v1_Verdict);
  'votes'?: (_roadwork_v1_DetectorVote)[];
  'image_sha256'?: (string);
  'image_width'?: (number);
  'image_height'?: (number);
  'cached'?: (boolean);
  'notices'?: (string)[];
  'roadwork_vote_share'?: (number | string);
  'vote_confidence'?: (number | string);
  'raw_score'?: (number | string);
  'quorum_met'?: (boolean);
  'latency'?: (_google_protobuf_Duration | null);
}

export interface Detection__Output {
  'roadwork_probability': (number);
  'verdict': (_roadwork_v1_Verdict__Output);
  'votes': (_roadwork_v1_DetectorVote__Output)[];
  'image_sha256': (string);
  'image_width': (number);
  'image_height': (number);
  'cached': (boolean);
  'notices': (string)[];
  'roadwork_vote_share': (number);
  'vote_confidence': (number);
  'raw_score': (number);
  'quorum_met': (boolean);
  'latency': (_google_protobuf_Duration__Output | null);
}
