// One Ask sent with a W3C trace context, as an instrumented Node client would send it.
//
// Usage: node tests/node/traced_ask.mjs HOST:PORT IMAGE_PATH TRACEPARENT
// Prints {"step":"ask","ok":true,"answer":...} and {"step":"all","ok":true}; exits 1 on a failed call.
// Driven by tests/router/observe/test_tracing.py.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const HERE = dirname(fileURLToPath(import.meta.url));
const PROTO_ROOT = resolve(HERE, '..', '..', 'protos');
const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_ROOT] };

const [addr, imagePath, traceparent] = process.argv.slice(2);
if (!addr || !imagePath || !traceparent) {
  process.stderr.write('usage: node traced_ask.mjs HOST:PORT IMAGE_PATH TRACEPARENT\n');
  process.exit(2);
}
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync('roadwork/v1/router.proto', LOADER_OPTIONS));
const client = new pkg.roadwork.v1.RouterService(addr, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
metadata.set('traceparent', traceparent);
const call = client.Ask(
  { image: readFileSync(imagePath), question: 'Is there roadwork?', generation: { max_tokens: 8 } },
  metadata,
  { deadline: new Date(Date.now() + 120_000) },
);
let answer = null;
call.on('data', (msg) => {
  if (msg.event === 'done') answer = msg.done;
});
call.on('error', (err) => {
  process.stderr.write(`Ask failed: ${grpc.status[err.code]}: ${err.details}\n`);
  process.exit(1);
});
call.on('end', () => {
  if (answer === null) {
    process.stderr.write('Ask ended without a done event\n');
    process.exit(1);
  }
  console.log(JSON.stringify({ step: 'ask', ok: true, answer: answer.answer, replica: answer.route.replica }));
  console.log(JSON.stringify({ step: 'all', ok: true }));
  client.close();
});
