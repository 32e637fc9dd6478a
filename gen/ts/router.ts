import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Any as _google_protobuf_Any, Any__Output as _google_protobuf_Any__Output } from './google/protobuf/Any';
import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from './google/protobuf/Duration';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp';
import type { Status as _google_rpc_Status, Status__Output as _google_rpc_Status__Output } from './google/rpc/Status';
import type { AnswerVerdict as _roadwork_v1_AnswerVerdict, AnswerVerdict__Output as _roadwork_v1_AnswerVerdict__Output } from './roadwork/v1/AnswerVerdict';
import type { AskDeltaEvent as _roadwork_v1_AskDeltaEvent, AskDeltaEvent__Output as _roadwork_v1_AskDeltaEvent__Output } from './roadwork/v1/AskDeltaEvent';
import type { AskDetectionEvent as _roadwork_v1_AskDetectionEvent, AskDetectionEvent__Output as _roadwork_v1_AskDetectionEvent__Output } from './roadwork/v1/AskDetectionEvent';
import type { AskDoneEvent as _roadwork_v1_AskDoneEvent, AskDoneEvent__Output as _roadwork_v1_AskDoneEvent__Output } from './roadwork/v1/AskDoneEvent';
import type { AskProgressEvent as _roadwork_v1_AskProgressEvent, AskProgressEvent__Output as _roadwork_v1_AskProgressEvent__Output } from './roadwork/v1/AskProgressEvent';
import type { AskRequest as _roadwork_v1_AskRequest, AskRequest__Output as _roadwork_v1_AskRequest__Output } from './roadwork/v1/AskRequest';
import type { AskResponse as _roadwork_v1_AskResponse, AskResponse__Output as _roadwork_v1_AskResponse__Output } from './roadwork/v1/AskResponse';
import type { BatchItem as _roadwork_v1_BatchItem, BatchItem__Output as _roadwork_v1_BatchItem__Output } from './roadwork/v1/BatchItem';
import type { BatchItemResult as _roadwork_v1_BatchItemResult, BatchItemResult__Output as _roadwork_v1_BatchItemResult__Output } from './roadwork/v1/BatchItemResult';
import type { BatchJob as _roadwork_v1_BatchJob, BatchJob__Output as _roadwork_v1_BatchJob__Output } from './roadwork/v1/BatchJob';
import type { BatchOptions as _roadwork_v1_BatchOptions, BatchOptions__Output as _roadwork_v1_BatchOptions__Output } from './roadwork/v1/BatchOptions';
import type { Box as _roadwork_v1_Box, Box__Output as _roadwork_v1_Box__Output } from './roadwork/v1/Box';
import type { CancelBatchRequest as _roadwork_v1_CancelBatchRequest, CancelBatchRequest__Output as _roadwork_v1_CancelBatchRequest__Output } from './roadwork/v1/CancelBatchRequest';
import type { CancelBatchResponse as _roadwork_v1_CancelBatchResponse, CancelBatchResponse__Output as _roadwork_v1_CancelBatchResponse__Output } from './roadwork/v1/CancelBatchResponse';
import type { CloseSessionRequest as _roadwork_v1_CloseSessionRequest, CloseSessionRequest__Output as _roadwork_v1_CloseSessionRequest__Output } from './roadwork/v1/CloseSessionRequest';
import type { CloseSessionResponse as _roadwork_v1_CloseSessionResponse, CloseSessionResponse__Output as _roadwork_v1_CloseSessionResponse__Output } from './roadwork/v1/CloseSessionResponse';
import type { Cost as _roadwork_v1_Cost, Cost__Output as _roadwork_v1_Cost__Output } from './roadwork/v1/Cost';
import type { CreateSessionRequest as _roadwork_v1_CreateSessionRequest, CreateSessionRequest__Output as _roadwork_v1_CreateSessionRequest__Output } from './roadwork/v1/CreateSessionRequest';
import type { CreateSessionResponse as _roadwork_v1_CreateSessionResponse, CreateSessionResponse__Output as _roadwork_v1_CreateSessionResponse__Output } from './roadwork/v1/CreateSessionResponse';
import type { DetectRequest as _roadwork_v1_DetectRequest, DetectRequest__Output as _roadwork_v1_DetectRequest__Output } from './roadwork/v1/DetectRequest';
import type { DetectResponse as _roadwork_v1_DetectResponse, DetectResponse__Output as _roadwork_v1_DetectResponse__Output } from './roadwork/v1/DetectResponse';
import type { Detection as _roadwork_v1_Detection, Detection__Output as _roadwork_v1_Detection__Output } from './roadwork/v1/Detection';
import type { DetectorVote as _roadwork_v1_DetectorVote, DetectorVote__Output as _roadwork_v1_DetectorVote__Output } from './roadwork/v1/DetectorVote';
import type { DispatchedProgress as _roadwork_v1_DispatchedProgress, DispatchedProgress__Output as _roadwork_v1_DispatchedProgress__Output } from './roadwork/v1/DispatchedProgress';
import type { FallingBackProgress as _roadwork_v1_FallingBackProgress, FallingBackProgress__Output as _roadwork_v1_FallingBackProgress__Output } from './roadwork/v1/FallingBackProgress';
import type { GenerationOptions as _roadwork_v1_GenerationOptions, GenerationOptions__Output as _roadwork_v1_GenerationOptions__Output } from './roadwork/v1/GenerationOptions';
import type { GetBatchRequest as _roadwork_v1_GetBatchRequest, GetBatchRequest__Output as _roadwork_v1_GetBatchRequest__Output } from './roadwork/v1/GetBatchRequest';
import type { GetBatchResponse as _roadwork_v1_GetBatchResponse, GetBatchResponse__Output as _roadwork_v1_GetBatchResponse__Output } from './roadwork/v1/GetBatchResponse';
import type { GetStatusRequest as _roadwork_v1_GetStatusRequest, GetStatusRequest__Output as _roadwork_v1_GetStatusRequest__Output } from './roadwork/v1/GetStatusRequest';
import type { GetStatusResponse as _roadwork_v1_GetStatusResponse, GetStatusResponse__Output as _roadwork_v1_GetStatusResponse__Output } from './roadwork/v1/GetStatusResponse';
import type { ImageSent as _roadwork_v1_ImageSent, ImageSent__Output as _roadwork_v1_ImageSent__Output } from './roadwork/v1/ImageSent';
import type { ListBatchResultsRequest as _roadwork_v1_ListBatchResultsRequest, ListBatchResultsRequest__Output as _roadwork_v1_ListBatchResultsRequest__Output } from './roadwork/v1/ListBatchResultsRequest';
import type { ListBatchResultsResponse as _roadwork_v1_ListBatchResultsResponse, ListBatchResultsResponse__Output as _roadwork_v1_ListBatchResultsResponse__Output } from './roadwork/v1/ListBatchResultsResponse';
import type { ListBatchesRequest as _roadwork_v1_ListBatchesRequest, ListBatchesRequest__Output as _roadwork_v1_ListBatchesRequest__Output } from './roadwork/v1/ListBatchesRequest';
import type { ListBatchesResponse as _roadwork_v1_ListBatchesResponse, ListBatchesResponse__Output as _roadwork_v1_ListBatchesResponse__Output } from './roadwork/v1/ListBatchesResponse';
import type { Migration as _roadwork_v1_Migration, Migration__Output as _roadwork_v1_Migration__Output } from './roadwork/v1/Migration';
import type { ObjectCount as _roadwork_v1_ObjectCount, ObjectCount__Output as _roadwork_v1_ObjectCount__Output } from './roadwork/v1/ObjectCount';
import type { PoolStatus as _roadwork_v1_PoolStatus, PoolStatus__Output as _roadwork_v1_PoolStatus__Output } from './roadwork/v1/PoolStatus';
import type { QueuedProgress as _roadwork_v1_QueuedProgress, QueuedProgress__Output as _roadwork_v1_QueuedProgress__Output } from './roadwork/v1/QueuedProgress';
import type { ReplicaStatus as _roadwork_v1_ReplicaStatus, ReplicaStatus__Output as _roadwork_v1_ReplicaStatus__Output } from './roadwork/v1/ReplicaStatus';
import type { RetryingProgress as _roadwork_v1_RetryingProgress, RetryingProgress__Output as _roadwork_v1_RetryingProgress__Output } from './roadwork/v1/RetryingProgress';
import type { Route as _roadwork_v1_Route, Route__Output as _roadwork_v1_Route__Output } from './roadwork/v1/Route';
import type { RouterServiceClient as _roadwork_v1_RouterServiceClient, RouterServiceDefinition as _roadwork_v1_RouterServiceDefinition } from './roadwork/v1/RouterService';
import type { RoutingRule as _roadwork_v1_RoutingRule, RoutingRule__Output as _roadwork_v1_RoutingRule__Output } from './roadwork/v1/RoutingRule';
import type { Session as _roadwork_v1_Session, Session__Output as _roadwork_v1_Session__Output } from './roadwork/v1/Session';
import type { SubmitBatchRequest as _roadwork_v1_SubmitBatchRequest, SubmitBatchRequest__Output as _roadwork_v1_SubmitBatchRequest__Output } from './roadwork/v1/SubmitBatchRequest';
import type { SubmitBatchResponse as _roadwork_v1_SubmitBatchResponse, SubmitBatchResponse__Output as _roadwork_v1_SubmitBatchResponse__Output } from './roadwork/v1/SubmitBatchResponse';
import type { Usage as _roadwork_v1_Usage, Usage__Output as _roadwork_v1_Usage__Output } from './roadwork/v1/Usage';
import type { WatchBatchRequest as _roadwork_v1_WatchBatchRequest, WatchBatchRequest__Output as _roadwork_v1_WatchBatchRequest__Output } from './roadwork/v1/WatchBatchRequest';
import type { WatchBatchResponse as _roadwork_v1_WatchBatchResponse, WatchBatchResponse__Output as _roadwork_v1_WatchBatchResponse__Output } from './roadwork/v1/WatchBatchResponse';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  google: {
    protobuf: {
      Any: MessageTypeDefinition<_google_protobuf_Any, _google_protobuf_Any__Output>
      Duration: MessageTypeDefinition<_google_protobuf_Duration, _google_protobuf_Duration__Output>
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
    }
    rpc: {
      Status: MessageTypeDefinition<_google_rpc_Status, _google_rpc_Status__Output>
    }
  }
  roadwork: {
    v1: {
      AnswerFormat: EnumTypeDefinition
      AnswerVerdict: MessageTypeDefinition<_roadwork_v1_AnswerVerdict, _roadwork_v1_AnswerVerdict__Output>
      AskDeltaEvent: MessageTypeDefinition<_roadwork_v1_AskDeltaEvent, _roadwork_v1_AskDeltaEvent__Output>
      AskDetectionEvent: MessageTypeDefinition<_roadwork_v1_AskDetectionEvent, _roadwork_v1_AskDetectionEvent__Output>
      AskDoneEvent: MessageTypeDefinition<_roadwork_v1_AskDoneEvent, _roadwork_v1_AskDoneEvent__Output>
      AskProgressEvent: MessageTypeDefinition<_roadwork_v1_AskProgressEvent, _roadwork_v1_AskProgressEvent__Output>
      AskRequest: MessageTypeDefinition<_roadwork_v1_AskRequest, _roadwork_v1_AskRequest__Output>
      AskResponse: MessageTypeDefinition<_roadwork_v1_AskResponse, _roadwork_v1_AskResponse__Output>
      BatchItem: MessageTypeDefinition<_roadwork_v1_BatchItem, _roadwork_v1_BatchItem__Output>
      BatchItemResult: MessageTypeDefinition<_roadwork_v1_BatchItemResult, _roadwork_v1_BatchItemResult__Output>
      BatchJob: MessageTypeDefinition<_roadwork_v1_BatchJob, _roadwork_v1_BatchJob__Output>
      BatchOptions: MessageTypeDefinition<_roadwork_v1_BatchOptions, _roadwork_v1_BatchOptions__Output>
      BatchState: EnumTypeDefinition
      Box: MessageTypeDefinition<_roadwork_v1_Box, _roadwork_v1_Box__Output>
      BreakerState: EnumTypeDefinition
      CancelBatchRequest: MessageTypeDefinition<_roadwork_v1_CancelBatchRequest, _roadwork_v1_CancelBatchRequest__Output>
      CancelBatchResponse: MessageTypeDefinition<_roadwork_v1_CancelBatchResponse, _roadwork_v1_CancelBatchResponse__Output>
      CloseSessionRequest: MessageTypeDefinition<_roadwork_v1_CloseSessionRequest, _roadwork_v1_CloseSessionRequest__Output>
      CloseSessionResponse: MessageTypeDefinition<_roadwork_v1_CloseSessionResponse, _roadwork_v1_CloseSessionResponse__Output>
      Cost: MessageTypeDefinition<_roadwork_v1_Cost, _roadwork_v1_Cost__Output>
      CreateSessionRequest: MessageTypeDefinition<_roadwork_v1_CreateSessionRequest, _roadwork_v1_CreateSessionRequest__Output>
      CreateSessionResponse: MessageTypeDefinition<_roadwork_v1_CreateSessionResponse, _roadwork_v1_CreateSessionResponse__Output>
      DetectRequest: MessageTypeDefinition<_roadwork_v1_DetectRequest, _roadwork_v1_DetectRequest__Output>
      DetectResponse: MessageTypeDefinition<_roadwork_v1_DetectResponse, _roadwork_v1_DetectResponse__Output>
      Detection: MessageTypeDefinition<_roadwork_v1_Detection, _roadwork_v1_Detection__Output>
      DetectorVote: MessageTypeDefinition<_roadwork_v1_DetectorVote, _roadwork_v1_DetectorVote__Output>
      DispatchedProgress: MessageTypeDefinition<_roadwork_v1_DispatchedProgress, _roadwork_v1_DispatchedProgress__Output>
      Engine: EnumTypeDefinition
      ErrorReason: EnumTypeDefinition
      FallingBackProgress: MessageTypeDefinition<_roadwork_v1_FallingBackProgress, _roadwork_v1_FallingBackProgress__Output>
      FinishReason: EnumTypeDefinition
      GenerationOptions: MessageTypeDefinition<_roadwork_v1_GenerationOptions, _roadwork_v1_GenerationOptions__Output>
      GetBatchRequest: MessageTypeDefinition<_roadwork_v1_GetBatchRequest, _roadwork_v1_GetBatchRequest__Output>
      GetBatchResponse: MessageTypeDefinition<_roadwork_v1_GetBatchResponse, _roadwork_v1_GetBatchResponse__Output>
      GetStatusRequest: MessageTypeDefinition<_roadwork_v1_GetStatusRequest, _roadwork_v1_GetStatusRequest__Output>
      GetStatusResponse: MessageTypeDefinition<_roadwork_v1_GetStatusResponse, _roadwork_v1_GetStatusResponse__Output>
      ImageSent: MessageTypeDefinition<_roadwork_v1_ImageSent, _roadwork_v1_ImageSent__Output>
      ItemStatus: EnumTypeDefinition
      ListBatchResultsRequest: MessageTypeDefinition<_roadwork_v1_ListBatchResultsRequest, _roadwork_v1_ListBatchResultsRequest__Output>
      ListBatchResultsResponse: MessageTypeDefinition<_roadwork_v1_ListBatchResultsResponse, _roadwork_v1_ListBatchResultsResponse__Output>
      ListBatchesRequest: MessageTypeDefinition<_roadwork_v1_ListBatchesRequest, _roadwork_v1_ListBatchesRequest__Output>
      ListBatchesResponse: MessageTypeDefinition<_roadwork_v1_ListBatchesResponse, _roadwork_v1_ListBatchesResponse__Output>
      Migration: MessageTypeDefinition<_roadwork_v1_Migration, _roadwork_v1_Migration__Output>
      ObjectCount: MessageTypeDefinition<_roadwork_v1_ObjectCount, _roadwork_v1_ObjectCount__Output>
      PoolStatus: MessageTypeDefinition<_roadwork_v1_PoolStatus, _roadwork_v1_PoolStatus__Output>
      QueuedProgress: MessageTypeDefinition<_roadwork_v1_QueuedProgress, _roadwork_v1_QueuedProgress__Output>
      ReplicaStatus: MessageTypeDefinition<_roadwork_v1_ReplicaStatus, _roadwork_v1_ReplicaStatus__Output>
      RequestKind: EnumTypeDefinition
      RetryingProgress: MessageTypeDefinition<_roadwork_v1_RetryingProgress, _roadwork_v1_RetryingProgress__Output>
      Route: MessageTypeDefinition<_roadwork_v1_Route, _roadwork_v1_Route__Output>
      RouterService: SubtypeConstructor<typeof grpc.Client, _roadwork_v1_RouterServiceClient> & { service: _roadwork_v1_RouterServiceDefinition }
      RoutingPolicy: EnumTypeDefinition
      RoutingRule: MessageTypeDefinition<_roadwork_v1_RoutingRule, _roadwork_v1_RoutingRule__Output>
      Session: MessageTypeDefinition<_roadwork_v1_Session, _roadwork_v1_Session__Output>
      SubmitBatchRequest: MessageTypeDefinition<_roadwork_v1_SubmitBatchRequest, _roadwork_v1_SubmitBatchRequest__Output>
      SubmitBatchResponse: MessageTypeDefinition<_roadwork_v1_SubmitBatchResponse, _roadwork_v1_SubmitBatchResponse__Output>
      Usage: MessageTypeDefinition<_roadwork_v1_Usage, _roadwork_v1_Usage__Output>
      Verdict: EnumTypeDefinition
      VoteStatus: EnumTypeDefinition
      WatchBatchRequest: MessageTypeDefinition<_roadwork_v1_WatchBatchRequest, _roadwork_v1_WatchBatchRequest__Output>
      WatchBatchResponse: MessageTypeDefinition<_roadwork_v1_WatchBatchResponse, _roadwork_v1_WatchBatchResponse__Output>
    }
  }
}

