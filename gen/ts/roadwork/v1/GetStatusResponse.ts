// Original file: protos/roadwork/v1/router.proto

import type { PoolStatus as _roadwork_v1_PoolStatus, PoolStatus__Output as _roadwork_v1_PoolStatus__Output } from '../../roadwork/v1/PoolStatus';

export interface GetStatusResponse {
  'serving'?: (boolean);
  'pools'?: (_roadwork_v1_PoolStatus)[];
  'routing'?: ({[key: string]: string});
}

export interface GetStatusResponse__Output {
  'serving': (boolean);
  'pools': (_roadwork_v1_PoolStatus__Output)[];
  'routing': ({[key: string]: string});
}
