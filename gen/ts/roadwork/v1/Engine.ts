// Original file: protos/roadwork/v1/router.proto

export const Engine = {
  ENGINE_UNSPECIFIED: 'ENGINE_UNSPECIFIED',
  ENGINE_EMBEDDED: 'ENGINE_EMBEDDED',
  ENGINE_OPENAI_HTTP: 'ENGINE_OPENAI_HTTP',
  ENGINE_VLLM: 'ENGINE_VLLM',
  ENGINE_SGLANG: 'ENGINE_SGLANG',
  ENGINE_LMDEPLOY: 'ENGINE_LMDEPLOY',
  ENGINE_DETECTIONS_ONLY: 'ENGINE_DETECTIONS_ONLY',
} as const;

export type Engine =
  | 'ENGINE_UNSPECIFIED'
  | 0
  | 'ENGINE_EMBEDDED'
  | 1
  | 'ENGINE_OPENAI_HTTP'
  | 2
  | 'ENGINE_VLLM'
  | 3
  | 'ENGINE_SGLANG'
  | 4
  | 'ENGINE_LMDEPLOY'
  | 5
  | 'ENGINE_DETECTIONS_ONLY'
  | 6

export type Engine__Output = typeof Engine[keyof typeof Engine]
