// Original file: protos/roadwork/v1/router.proto


export interface Box {
  'class_name'?: (string);
  'confidence'?: (number | string);
  'x1'?: (number | string);
  'y1'?: (number | string);
  'x2'?: (number | string);
  'y2'?: (number | string);
  'roadwork_evidence'?: (boolean);
}

export interface Box__Output {
  'class_name': (string);
  'confidence': (number);
  'x1': (number);
  'y1': (number);
  'x2': (number);
  'y2': (number);
  'roadwork_evidence': (boolean);
}
