// Original file: protos/roadwork/v1/router.proto

export const BreakerState = {
  BREAKER_STATE_UNSPECIFIED: 'BREAKER_STATE_UNSPECIFIED',
  BREAKER_STATE_CLOSED: 'BREAKER_STATE_CLOSED',
  BREAKER_STATE_OPEN: 'BREAKER_STATE_OPEN',
  BREAKER_STATE_HALF_OPEN: 'BREAKER_STATE_HALF_OPEN',
} as const;

export type BreakerState =
  | 'BREAKER_STATE_UNSPECIFIED'
  | 0
  | 'BREAKER_STATE_CLOSED'
  | 1
  | 'BREAKER_STATE_OPEN'
  | 2
  | 'BREAKER_STATE_HALF_OPEN'
  | 3

export type BreakerState__Output = typeof BreakerState[keyof typeof BreakerState]
