// Original file: protos/roadwork/v1/router.proto

import type { PoolStatus as _roadwork_v1_PoolStatus, PoolStatus__Output as _roadwork_v1_PoolStatus__Output } from '../../roadwork/v1/PoolStatus';
import type { RoutingRule as _roadwork_v1_RoutingRule, RoutingRule__Output as _roadwork_v1_RoutingRule__Output } from '../../roadwork/v1/RoutingRule';
import type { ReplicaStatus as _roadwork_v1_ReplicaStatus, ReplicaStatus__Output as _roadwork_v1_ReplicaStatus__Output } from '../../roadwork/v1/ReplicaStatus';

export interface GetStatusResponse {
  'serving'?: (boolean);
  'pools'?: (_roadwork_v1_PoolStatus)[];
  'routing'?: (_roadwork_v1_RoutingRule)[];
  'replicas'?: (_roadwork_v1_ReplicaStatus)[];
}

export interface GetStatusResponse__Output {
  'serving': (boolean);
  'pools': (_roadwork_v1_PoolStatus__Output)[];
  'routing': (_roadwork_v1_RoutingRule__Output)[];
  'replicas': (_roadwork_v1_ReplicaStatus__Output)[];
}
