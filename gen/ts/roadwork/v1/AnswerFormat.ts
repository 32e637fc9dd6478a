// Original file: protos/roadwork/v1/router.proto

export const AnswerFormat = {
  ANSWER_FORMAT_UNSPECIFIED: 'ANSWER_FORMAT_UNSPECIFIED',
  ANSWER_FORMAT_TEXT: 'ANSWER_FORMAT_TEXT',
  ANSWER_FORMAT_VERDICT: 'ANSWER_FORMAT_VERDICT',
} as const;

export type AnswerFormat =
  | 'ANSWER_FORMAT_UNSPECIFIED'
  | 0
  | 'ANSWER_FORMAT_TEXT'
  | 1
  | 'ANSWER_FORMAT_VERDICT'
  | 2

export type AnswerFormat__Output = typeof AnswerFormat[keyof typeof AnswerFormat]
