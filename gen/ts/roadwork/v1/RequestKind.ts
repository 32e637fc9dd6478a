// Original file: protos/roadwork/v1/router.proto

export const RequestKind = {
  REQUEST_KIND_UNSPECIFIED: 'REQUEST_KIND_UNSPECIFIED',
  REQUEST_KIND_MULTI_TURN: 'REQUEST_KIND_MULTI_TURN',
  REQUEST_KIND_BATCH: 'REQUEST_KIND_BATCH',
  REQUEST_KIND_SINGLE_SHOT: 'REQUEST_KIND_SINGLE_SHOT',
} as const;

export type RequestKind =
  | 'REQUEST_KIND_UNSPECIFIED'
  | 0
  | 'REQUEST_KIND_MULTI_TURN'
  | 1
  | 'REQUEST_KIND_BATCH'
  | 2
  | 'REQUEST_KIND_SINGLE_SHOT'
  | 3

export type RequestKind__Output = typeof RequestKind[keyof typeof RequestKind]
