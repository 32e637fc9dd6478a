// Original file: protos/roadwork/v1/router.proto


export interface CloseSessionResponse {
}

export interface CloseSessionResponse__Output {
}
