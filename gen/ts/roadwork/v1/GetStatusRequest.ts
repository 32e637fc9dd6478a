// Original file: protos/roadwork/v1/router.proto


export interface GetStatusRequest {
}

export interface GetStatusRequest__Output {
}
