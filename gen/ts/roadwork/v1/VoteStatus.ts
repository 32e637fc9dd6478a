// Original file: protos/roadwork/v1/router.proto

export const VoteStatus = {
  VOTE_STATUS_UNSPECIFIED: 'VOTE_STATUS_UNSPECIFIED',
  VOTE_STATUS_OK: 'VOTE_STATUS_OK',
  VOTE_STATUS_TIMED_OUT: 'VOTE_STATUS_TIMED_OUT',
  VOTE_STATUS_FAILED: 'VOTE_STATUS_FAILED',
} as const;

export type VoteStatus =
  | 'VOTE_STATUS_UNSPECIFIED'
  | 0
  | 'VOTE_STATUS_OK'
  | 1
  | 'VOTE_STATUS_TIMED_OUT'
  | 2
  | 'VOTE_STATUS_FAILED'
  | 3

export type VoteStatus__Output = typeof VoteStatus[keyof typeof VoteStatus]
