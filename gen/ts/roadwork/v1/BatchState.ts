// Original file: protos/roadwork/v1/router.proto

export const BatchState = {
  BATCH_STATE_UNSPECIFIED: 'BATCH_STATE_UNSPECIFIED',
  BATCH_STATE_QUEUED: 'BATCH_STATE_QUEUED',
  BATCH_STATE_RUNNING: 'BATCH_STATE_RUNNING',
  BATCH_STATE_COMPLETED: 'BATCH_STATE_COMPLETED',
  BATCH_STATE_CANCELED: 'BATCH_STATE_CANCELED',
} as const;

export type BatchState =
  | 'BATCH_STATE_UNSPECIFIED'
  | 0
  | 'BATCH_STATE_QUEUED'
  | 1
  | 'BATCH_STATE_RUNNING'
  | 2
  | 'BATCH_STATE_COMPLETED'
  | 3
  | 'BATCH_STATE_CANCELED'
  | 4

export type BatchState__Output = typeof BatchState[keyof typeof BatchState]
