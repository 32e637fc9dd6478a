// Original file: protos/roadwork/v1/router.proto


export interface ObjectCount {
  'type'?: (string);
  'count'?: (number);
}

export interface ObjectCount__Output {
  'type': (string);
  'count': (number);
}
