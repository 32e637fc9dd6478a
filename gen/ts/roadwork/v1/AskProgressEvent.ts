// Original file: protos/roadwork/v1/router.proto

import type { QueuedProgress as _roadwork_v1_QueuedProgress, QueuedProgress__Output as _roadwork_v1_QueuedProgress__Output } from '../../roadwork/v1/QueuedProgress';
import type { DispatchedProgress as _roadwork_v1_DispatchedProgress, DispatchedProgress__Output as _roadwork_v1_DispatchedProgress__Output } from '../../roadwork/v1/DispatchedProgress';
import type { RetryingProgress as _roadwork_v1_RetryingProgress, RetryingProgress__Output as _roadwork_v1_RetryingProgress__Output } from '../../roadwork/v1/RetryingProgress';
import type { FallingBackProgress as _roadwork_v1_FallingBackProgress, FallingBackProgress__Output as _roadwork_v1_FallingBackProgress__Output } from '../../roadwork/v1/FallingBackProgress';

export interface AskProgressEvent {
  'queued'?: (_roadwork_v1_QueuedProgress | null);
  'dispatched'?: (_roadwork_v1_DispatchedProgress | null);
  'retrying'?: (_roadwork_v1_RetryingProgress | null);
  'falling_back'?: (_roadwork_v1_FallingBackProgress | null);
  'stage'?: "queued"|"dispatched"|"retrying"|"falling_back";
}

export interface AskProgressEvent__Output {
  'queued'?: (_roadwork_v1_QueuedProgress__Output | null);
  'dispatched'?: (_roadwork_v1_DispatchedProgress__Output | null);
  'retrying'?: (_roadwork_v1_RetryingProgress__Output | null);
  'falling_back'?: (_roadwork_v1_FallingBackProgress__Output | null);
  'stage'?: "queued"|"dispatched"|"retrying"|"falling_back";
}
