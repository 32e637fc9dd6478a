// The generated TypeScript declarations (gen/ts) in use, as a TypeScript client writes it: type-checked
// by `tsc -p tests/node` in make lint (never run; tests/node/client.mjs makes the same calls at run time).
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

import type { ProtoGrpcType } from '../../gen/ts/router';
import type { AskResponse__Output } from '../../gen/ts/roadwork/v1/AskResponse';

// The loader options the declarations were generated for (scripts/gen_ts.py).
const definition = protoLoader.loadSync('roadwork/v1/router.proto', {
  keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: ['protos'],
});
const proto = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;

export function askOnce(addr: string, image: Buffer, token: string): Promise<string> {
  const client = new proto.roadwork.v1.RouterService(addr, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.add('authorization', `Bearer ${token}`);
  const call = client.Ask(
    { image, question: 'Is there roadwork?', open_session: true, generation: { max_tokens: 64 } },
    md,
    { deadline: new Date(Date.now() + 30_000) },
  );
  return new Promise((resolve, reject) => {
    let answer = '';
    call.on('data', (ev: AskResponse__Output) => {
      if (ev.event === 'delta') answer += ev.delta?.text ?? '';
      if (ev.event === 'done' && ev.done?.route?.kind === 'REQUEST_KIND_MULTI_TURN') answer += `\n[${ev.done.session_id}]`;
    });
    call.on('error', (err: grpc.ServiceError) => reject(err)); // err.code: grpc.status.DEADLINE_EXCEEDED, ...
    call.on('end', () => resolve(answer));
  });
}

export function newestJobNames(addr: string): Promise<string[]> {
  const client = new proto.roadwork.v1.RouterService(addr, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.ListBatches({ page_size: 10, state: 'BATCH_STATE_COMPLETED' }, (err, reply) =>
      err || !reply ? reject(err) : resolve(reply.jobs.map((j) => j.display_name)),
    );
  });
}
