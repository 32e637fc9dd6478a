// Original file: protos/roadwork/v1/router.proto

export const Verdict = {
  VERDICT_UNSPECIFIED: 'VERDICT_UNSPECIFIED',
  VERDICT_ROADWORK: 'VERDICT_ROADWORK',
  VERDICT_NO_ROADWORK: 'VERDICT_NO_ROADWORK',
} as const;

export type Verdict =
  | 'VERDICT_UNSPECIFIED'
  | 0
  | 'VERDICT_ROADWORK'
  | 1
  | 'VERDICT_NO_ROADWORK'
  | 2

export type Verdict__Output = typeof Verdict[keyof typeof Verdict]
