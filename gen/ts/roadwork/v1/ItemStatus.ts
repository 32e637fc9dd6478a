// Original file: protos/roadwork/v1/router.proto

export const ItemStatus = {
  ITEM_STATUS_UNSPECIFIED: 'ITEM_STATUS_UNSPECIFIED',
  ITEM_STATUS_PENDING: 'ITEM_STATUS_PENDING',
  ITEM_STATUS_SUCCEEDED: 'ITEM_STATUS_SUCCEEDED',
  ITEM_STATUS_FAILED: 'ITEM_STATUS_FAILED',
  ITEM_STATUS_CANCELED: 'ITEM_STATUS_CANCELED',
} as const;

export type ItemStatus =
  | 'ITEM_STATUS_UNSPECIFIED'
  | 0
  | 'ITEM_STATUS_PENDING'
  | 1
  | 'ITEM_STATUS_SUCCEEDED'
  | 2
  | 'ITEM_STATUS_FAILED'
  | 3
  | 'ITEM_STATUS_CANCELED'
  | 4

export type ItemStatus__Output = typeof ItemStatus[keyof typeof ItemStatus]
