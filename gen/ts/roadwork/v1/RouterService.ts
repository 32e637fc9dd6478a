// Original file: protos/roadwork/v1/router.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AskRequest as _roadwork_v1_AskRequest, AskRequest__Output as _roadwork_v1_AskRequest__Output } from '../../roadwork/v1/AskRequest';
import type { AskResponse as _roadwork_v1_AskResponse, AskResponse__Output as _roadwork_v1_AskResponse__Output } from '../../roadwork/v1/AskResponse';
import type { CancelBatchRequest as _roadwork_v1_CancelBatchRequest, CancelBatchRequest__Output as _roadwork_v1_CancelBatchRequest__Output } from '../../roadwork/v1/CancelBatchRequest';
import type { CancelBatchResponse as _roadwork_v1_CancelBatchResponse, CancelBatchResponse__Output as _roadwork_v1_CancelBatchResponse__Output } from '../../roadwork/v1/CancelBatchResponse';
import type { CloseSessionRequest as _roadwork_v1_CloseSessionRequest, CloseSessionRequest__Output as _roadwork_v1_CloseSessionRequest__Output } from '../../roadwork/v1/CloseSessionRequest';
import type { CloseSessionResponse as _roadwork_v1_CloseSessionResponse, CloseSessionResponse__Output as _roadwork_v1_CloseSessionResponse__Output } from '../../roadwork/v1/CloseSessionResponse';
import type { CreateSessionRequest as _roadwork_v1_CreateSessionRequest, CreateSessionRequest__Output as _roadwork_v1_CreateSessionRequest__Output } from '../../roadwork/v1/CreateSessionRequest';
import type { CreateSessionResponse as _roadwork_v1_CreateSessionResponse, CreateSessionResponse__Output as _roadwork_v1_CreateSessionResponse__Output } from '../../roadwork/v1/CreateSessionResponse';
import type { DetectRequest as _roadwork_v1_DetectRequest, DetectRequest__Output as _roadwork_v1_DetectRequest__Output } from '../../roadwork/v1/DetectRequest';
import type { DetectResponse as _roadwork_v1_DetectResponse, DetectResponse__Output as _roadwork_v1_DetectResponse__Output } from '../../roadwork/v1/DetectResponse';
import type { GetBatchRequest as _roadwork_v1_GetBatchRequest, GetBatchRequest__Output as _roadwork_v1_GetBatchRequest__Output } from '../../roadwork/v1/GetBatchRequest';
import type { GetBatchResponse as _roadwork_v1_GetBatchResponse, GetBatchResponse__Output as _roadwork_v1_GetBatchResponse__Output } from '../../roadwork/v1/GetBatchResponse';
import type { GetStatusRequest as _roadwork_v1_GetStatusRequest, GetStatusRequest__Output as _roadwork_v1_GetStatusRequest__Output } from '../../roadwork/v1/GetStatusRequest';
import type { GetStatusResponse as _roadwork_v1_GetStatusResponse, GetStatusResponse__Output as _roadwork_v1_GetStatusResponse__Output } from '../../roadwork/v1/GetStatusResponse';
import type { ListBatchResultsRequest as _roadwork_v1_ListBatchResultsRequest, ListBatchResultsRequest__Output as _roadwork_v1_ListBatchResultsRequest__Output } from '../../roadwork/v1/ListBatchResultsRequest';
import type { ListBatchResultsResponse as _roadwork_v1_ListBatchResultsResponse, ListBatchResultsResponse__Output as _roadwork_v1_ListBatchResultsResponse__Output } from '../../roadwork/v1/ListBatchResultsResponse';
import type { ListBatchesRequest as _roadwork_v1_ListBatchesRequest, ListBatchesRequest__Output as _roadwork_v1_ListBatchesRequest__Output } from '../../roadwork/v1/ListBatchesRequest';
import type { ListBatchesResponse as _roadwork_v1_ListBatchesResponse, ListBatchesResponse__Output as _roadwork_v1_ListBatchesResponse__Output } from '../../roadwork/v1/ListBatchesResponse';
import type { SubmitBatchRequest as _roadwork_v1_SubmitBatchRequest, SubmitBatchRequest__Output as _roadwork_v1_SubmitBatchRequest__Output } from '../../roadwork/v1/SubmitBatchRequest';
import type { SubmitBatchResponse as _roadwork_v1_SubmitBatchResponse, SubmitBatchResponse__Output as _roadwork_v1_SubmitBatchResponse__Output } from '../../roadwork/v1/SubmitBatchResponse';
import type { WatchBatchRequest as _roadwork_v1_WatchBatchRequest, WatchBatchRequest__Output as _roadwork_v1_WatchBatchRequest__Output } from '../../roadwork/v1/WatchBatchRequest';
import type { WatchBatchResponse as _roadwork_v1_WatchBatchResponse, WatchBatchResponse__Output as _roadwork_v1_WatchBatchResponse__Output } from '../../roadwork/v1/WatchBatchResponse';

export interface RouterServiceClient extends grpc.Client {
  Ask(argument: _roadwork_v1_AskRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_roadwork_v1_AskResponse__Output>;
  Ask(argument: _roadwork_v1_AskRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_roadwork_v1_AskResponse__Output>;
  ask(argument: _roadwork_v1_AskRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_roadwork_v1_AskResponse__Output>;
  ask(argument: _roadwork_v1_AskRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_roadwork_v1_AskResponse__Output>;
  
  CancelBatch(argument: _roadwork_v1_CancelBatchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  CancelBatch(argument: _roadwork_v1_CancelBatchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  CancelBatch(argument: _roadwork_v1_CancelBatchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  CancelBatch(argument: _roadwork_v1_CancelBatchRequest, callback: grpc.requestCallback<_roadwork_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  cancelBatch(argument: _roadwork_v1_CancelBatchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  cancelBatch(argument: _roadwork_v1_CancelBatchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  cancelBatch(argument: _roadwork_v1_CancelBatchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  cancelBatch(argument: _roadwork_v1_CancelBatchRequest, callback: grpc.requestCallback<_roadwork_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  
  CloseSession(argument: _roadwork_v1_CloseSessionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_CloseSessionResponse__Output>): grpc.ClientUnaryCall;
  CloseSession(argument: _roadwork_v1_CloseSessionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_CloseSessionResponse__Output>): grpc.ClientUnaryCall;
  CloseSession(argument: _roadwork_v1_CloseSessionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_CloseSessionResponse__Output>): grpc.ClientUnaryCall;
  CloseSession(argument: _roadwork_v1_CloseSessionRequest, callback: grpc.requestCallback<_roadwork_v1_CloseSessionResponse__Output>): grpc.ClientUnaryCall;
  closeSession(argument: _roadwork_v1_CloseSessionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_CloseSessionResponse__Output>): grpc.ClientUnaryCall;
  closeSession(argument: _roadwork_v1_CloseSessionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_CloseSessionResponse__Output>): grpc.ClientUnaryCall;
  closeSession(argument: _roadwork_v1_CloseSessionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_CloseSessionResponse__Output>): grpc.ClientUnaryCall;
  closeSession(argument: _roadwork_v1_CloseSessionRequest, callback: grpc.requestCallback<_roadwork_v1_CloseSessionResponse__Output>): grpc.ClientUnaryCall;
  
  CreateSession(argument: _roadwork_v1_CreateSessionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_CreateSessionResponse__Output>): grpc.ClientUnaryCall;
  CreateSession(argument: _roadwork_v1_CreateSessionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_CreateSessionResponse__Output>): grpc.ClientUnaryCall;
  CreateSession(argument: _roadwork_v1_CreateSessionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_CreateSessionResponse__Output>): grpc.ClientUnaryCall;
  CreateSession(argument: _roadwork_v1_CreateSessionRequest, callback: grpc.requestCallback<_roadwork_v1_CreateSessionResponse__Output>): grpc.ClientUnaryCall;
  createSession(argument: _roadwork_v1_CreateSessionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_CreateSessionResponse__Output>): grpc.ClientUnaryCall;
  createSession(argument: _roadwork_v1_CreateSessionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_CreateSessionResponse__Output>): grpc.ClientUnaryCall;
  createSession(argument: _roadwork_v1_CreateSessionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_CreateSessionResponse__Output>): grpc.ClientUnaryCall;
  createSession(argument: _roadwork_v1_CreateSessionRequest, callback: grpc.requestCallback<_roadwork_v1_CreateSessionResponse__Output>): grpc.ClientUnaryCall;
  
  Detect(argument: _roadwork_v1_DetectRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_DetectResponse__Output>): grpc.ClientUnaryCall;
  Detect(argument: _roadwork_v1_DetectRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_DetectResponse__Output>): grpc.ClientUnaryCall;
  Detect(argument: _roadwork_v1_DetectRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_DetectResponse__Output>): grpc.ClientUnaryCall;
  Detect(argument: _roadwork_v1_DetectRequest, callback: grpc.requestCallback<_roadwork_v1_DetectResponse__Output>): grpc.ClientUnaryCall;
  detect(argument: _roadwork_v1_DetectRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_DetectResponse__Output>): grpc.ClientUnaryCall;
  detect(argument: _roadwork_v1_DetectRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_DetectResponse__Output>): grpc.ClientUnaryCall;
  detect(argument: _roadwork_v1_DetectRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_DetectResponse__Output>): grpc.ClientUnaryCall;
  detect(argument: _roadwork_v1_DetectRequest, callback: grpc.requestCallback<_roadwork_v1_DetectResponse__Output>): grpc.ClientUnaryCall;
  
  GetBatch(argument: _roadwork_v1_GetBatchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  GetBatch(argument: _roadwork_v1_GetBatchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  GetBatch(argument: _roadwork_v1_GetBatchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  GetBatch(argument: _roadwork_v1_GetBatchRequest, callback: grpc.requestCallback<_roadwork_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  getBatch(argument: _roadwork_v1_GetBatchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  getBatch(argument: _roadwork_v1_GetBatchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  getBatch(argument: _roadwork_v1_GetBatchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  getBatch(argument: _roadwork_v1_GetBatchRequest, callback: grpc.requestCallback<_roadwork_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  
  GetStatus(argument: _roadwork_v1_GetStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _roadwork_v1_GetStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _roadwork_v1_GetStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _roadwork_v1_GetStatusRequest, callback: grpc.requestCallback<_roadwork_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _roadwork_v1_GetStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _roadwork_v1_GetStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _roadwork_v1_GetStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _roadwork_v1_GetStatusRequest, callback: grpc.requestCallback<_roadwork_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  
  ListBatchResults(argument: _roadwork_v1_ListBatchResultsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_roadwork_v1_ListBatchResultsResponse__Output>;
  ListBatchResults(argument: _roadwork_v1_ListBatchResultsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_roadwork_v1_ListBatchResultsResponse__Output>;
  listBatchResults(argument: _roadwork_v1_ListBatchResultsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_roadwork_v1_ListBatchResultsResponse__Output>;
  listBatchResults(argument: _roadwork_v1_ListBatchResultsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_roadwork_v1_ListBatchResultsResponse__Output>;
  
  ListBatches(argument: _roadwork_v1_ListBatchesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  ListBatches(argument: _roadwork_v1_ListBatchesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  ListBatches(argument: _roadwork_v1_ListBatchesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  ListBatches(argument: _roadwork_v1_ListBatchesRequest, callback: grpc.requestCallback<_roadwork_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  listBatches(argument: _roadwork_v1_ListBatchesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  listBatches(argument: _roadwork_v1_ListBatchesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  listBatches(argument: _roadwork_v1_ListBatchesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  listBatches(argument: _roadwork_v1_ListBatchesRequest, callback: grpc.requestCallback<_roadwork_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  
  SubmitBatch(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_SubmitBatchResponse__Output>): grpc.ClientWritableStream<_roadwork_v1_SubmitBatchRequest>;
  SubmitBatch(metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_SubmitBatchResponse__Output>): grpc.ClientWritableStream<_roadwork_v1_SubmitBatchRequest>;
  SubmitBatch(options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_SubmitBatchResponse__Output>): grpc.ClientWritableStream<_roadwork_v1_SubmitBatchRequest>;
  SubmitBatch(callback: grpc.requestCallback<_roadwork_v1_SubmitBatchResponse__Output>): grpc.ClientWritableStream<_roadwork_v1_SubmitBatchRequest>;
  submitBatch(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_SubmitBatchResponse__Output>): grpc.ClientWritableStream<_roadwork_v1_SubmitBatchRequest>;
  submitBatch(metadata: grpc.Metadata, callback: grpc.requestCallback<_roadwork_v1_SubmitBatchResponse__Output>): grpc.ClientWritableStream<_roadwork_v1_SubmitBatchRequest>;
  submitBatch(options: grpc.CallOptions, callback: grpc.requestCallback<_roadwork_v1_SubmitBatchResponse__Output>): grpc.ClientWritableStream<_roadwork_v1_SubmitBatchRequest>;
  submitBatch(callback: grpc.requestCallback<_roadwork_v1_SubmitBatchResponse__Output>): grpc.ClientWritableStream<_roadwork_v1_SubmitBatchRequest>;
  
  WatchBatch(argument: _roadwork_v1_WatchBatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_roadwork_v1_WatchBatchResponse__Output>;
  WatchBatch(argument: _roadwork_v1_WatchBatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_roadwork_v1_WatchBatchResponse__Output>;
  watchBatch(argument: _roadwork_v1_WatchBatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_roadwork_v1_WatchBatchResponse__Output>;
  watchBatch(argument: _roadwork_v1_WatchBatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_roadwork_v1_WatchBatchResponse__Output>;
  
}

export interface RouterServiceHandlers extends grpc.UntypedServiceImplementation {
  Ask: grpc.handleServerStreamingCall<_roadwork_v1_AskRequest__Output, _roadwork_v1_AskResponse>;
  
  CancelBatch: grpc.handleUnaryCall<_roadwork_v1_CancelBatchRequest__Output, _roadwork_v1_CancelBatchResponse>;
  
  CloseSession: grpc.handleUnaryCall<_roadwork_v1_CloseSessionRequest__Output, _roadwork_v1_CloseSessionResponse>;
  
  CreateSession: grpc.handleUnaryCall<_roadwork_v1_CreateSessionRequest__Output, _roadwork_v1_CreateSessionResponse>;
  
  Detect: grpc.handleUnaryCall<_roadwork_v1_DetectRequest__Output, _roadwork_v1_DetectResponse>;
  
  GetBatch: grpc.handleUnaryCall<_roadwork_v1_GetBatchRequest__Output, _roadwork_v1_GetBatchResponse>;
  
  GetStatus: grpc.handleUnaryCall<_roadwork_v1_GetStatusRequest__Output, _roadwork_v1_GetStatusResponse>;
  
  ListBatchResults: grpc.handleServerStreamingCall<_roadwork_v1_ListBatchResultsRequest__Output, _roadwork_v1_ListBatchResultsResponse>;
  
  ListBatches: grpc.handleUnaryCall<_roadwork_v1_ListBatchesRequest__Output, _roadwork_v1_ListBatchesResponse>;
  
  SubmitBatch: grpc.handleClientStreamingCall<_roadwork_v1_SubmitBatchRequest__Output, _roadwork_v1_SubmitBatchResponse>;
  
  WatchBatch: grpc.handleServerStreamingCall<_roadwork_v1_WatchBatchRequest__Output, _roadwork_v1_WatchBatchResponse>;
  
}

export interface RouterServiceDefinition extends grpc.ServiceDefinition {
  Ask: MethodDefinition<_roadwork_v1_AskRequest, _roadwork_v1_AskResponse, _roadwork_v1_AskRequest__Output, _roadwork_v1_AskResponse__Output>
  CancelBatch: MethodDefinition<_roadwork_v1_CancelBatchRequest, _roadwork_v1_CancelBatchResponse, _roadwork_v1_CancelBatchRequest__Output, _roadwork_v1_CancelBatchResponse__Output>
  CloseSession: MethodDefinition<_roadwork_v1_CloseSessionRequest, _roadwork_v1_CloseSessionResponse, _roadwork_v1_CloseSessionRequest__Output, _roadwork_v1_CloseSessionResponse__Output>
  CreateSession: MethodDefinition<_roadwork_v1_CreateSessionRequest, _roadwork_v1_CreateSessionResponse, _roadwork_v1_CreateSessionRequest__Output, _roadwork_v1_CreateSessionResponse__Output>
  Detect: MethodDefinition<_roadwork_v1_DetectRequest, _roadwork_v1_DetectResponse, _roadwork_v1_DetectRequest__Output, _roadwork_v1_DetectResponse__Output>
  GetBatch: MethodDefinition<_roadwork_v1_GetBatchRequest, _roadwork_v1_GetBatchResponse, _roadwork_v1_GetBatchRequest__Output, _roadwork_v1_GetBatchResponse__Output>
  GetStatus: MethodDefinition<_roadwork_v1_GetStatusRequest, _roadwork_v1_GetStatusResponse, _roadwork_v1_GetStatusRequest__Output, _roadwork_v1_GetStatusResponse__Output>
  ListBatchResults: MethodDefinition<_roadwork_v1_ListBatchResultsRequest, _roadwork_v1_ListBatchResultsResponse, _roadwork_v1_ListBatchResultsRequest__Output, _roadwork_v1_ListBatchResultsResponse__Output>
  ListBatches: MethodDefinition<_roadwork_v1_ListBatchesRequest, _roadwork_v1_ListBatchesResponse, _roadwork_v1_ListBatchesRequest__Output, _roadwork_v1_ListBatchesResponse__Output>
  SubmitBatch: MethodDefinition<_roadwork_v1_SubmitBatchRequest, _roadwork_v1_SubmitBatchResponse, _roadwork_v1_SubmitBatchRequest__Output, _roadwork_v1_SubmitBatchResponse__Output>
  WatchBatch: MethodDefinition<_roadwork_v1_WatchBatchRequest, _roadwork_v1_WatchBatchResponse, _roadwork_v1_WatchBatchRequest__Output, _roadwork_v1_WatchBatchResponse__Output>
}
