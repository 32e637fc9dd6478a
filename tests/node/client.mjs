// Node.js client test for roadwork-router: exercises roadwork.v1.RouterService through
// @grpc/grpc-js + @grpc/proto-loader, exactly as a third-party Node client would.
//
// Usage: node tests/node/client.mjs HOST:PORT IMAGE_PATH
// Prints one JSON line per step ({"step": ..., "ok": true, ...}) and finally {"step":"all","ok":true}.
// On a failed check: prints the reason to stderr and exits 1.
// Driven by tests/test_node_client.py (run `npm ci` in tests/node first).

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const PROTO_ROOT = resolve(HERE, '..', '..', 'protos');
const PROTO_FILE = resolve(PROTO_ROOT, 'roadwork', 'v1', 'router.proto');
const CALL_TIMEOUT_MS = 120_000;
const BATCH_GUARD_MS = 120_000;

const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  // google/protobuf/timestamp.proto: proto-loader (through protobufjs) bundles the well-known
  // types, so only the project's proto root is needed here.
  includeDirs: [PROTO_ROOT],
};

// google.rpc.Status and its detail types (vendored under protos/google/rpc), to read the rich error
// details every router error carries in the `grpc-status-details-bin` trailer.
function loadErrorTypes() {
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) =>
    target.startsWith('google/protobuf/') ? target : resolve(PROTO_ROOT, target); // protobufjs bundles google/protobuf
  root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: true });
  return root;
}
const ERROR_TYPES = loadErrorTypes();
const STATUS = ERROR_TYPES.lookupType('google.rpc.Status');

// The google.rpc.Status of a failed call: { code, message, details: { ErrorInfo, RetryInfo, BadRequest } }.
function richStatus(err) {
  const [raw] = err.metadata?.get('grpc-status-details-bin') ?? [];
  check(raw, `${grpc.status[err.code]}: no grpc-status-details-bin trailer`);
  const status = STATUS.decode(raw);
  check(status.code === err.code, `Status.code ${status.code} != the call's ${err.code}`);
  check(status.message === err.details, `Status.message ${JSON.stringify(status.message)} != ${JSON.stringify(err.details)}`);
  const details = {};
  for (const any of status.details) {
    const name = any.type_url.slice(any.type_url.lastIndexOf('/') + 1); // type.googleapis.com/google.rpc.ErrorInfo
    const type = ERROR_TYPES.lookupType(name);
    details[name.replace('google.rpc.', '')] = type.toObject(type.decode(any.value), { longs: Number, defaults: true });
  }
  check(details.ErrorInfo?.domain === 'roadwork.v1', `no ErrorInfo of domain roadwork.v1: ${JSON.stringify(details)}`);
  return details;
}

// Checks an error's ErrorInfo.reason, and the BadRequest field when `field` is given.
function checkReason(where, err, reason, field) {
  const details = richStatus(err);
  check(details.ErrorInfo.reason === reason, `${where}: reason ${details.ErrorInfo.reason}, expected ${reason}`);
  if (field !== undefined) {
    const fields = (details.BadRequest?.field_violations ?? []).map((v) => v.field);
    check(fields.length === 1 && fields[0] === field, `${where}: BadRequest fields ${JSON.stringify(fields)}, expected [${field}]`);
  }
  return details;
}

// grpc.health.v1 as a protobufjs JSON descriptor (no extra npm package needed).
const HEALTH_JSON = {
  nested: {
    grpc: {
      nested: {
        health: {
          nested: {
            v1: {
              nested: {
                HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
                HealthCheckResponse: {
                  fields: { status: { type: 'ServingStatus', id: 1 } },
                  nested: {
                    ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } },
                  },
                },
                Health: {
                  methods: {
                    Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse' },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

class CheckError extends Error {}

function check(cond, message) {
  if (!cond) throw new CheckError(message);
}

function emit(step, details = {}) {
  process.stdout.write(`${JSON.stringify({ step, ok: true, ...details })}\n`);
}

function deadline(ms = CALL_TIMEOUT_MS) {
  return new Date(Date.now() + ms);
}

function callOptions() {
  return { deadline: deadline() };
}

function unary(client, method, request) {
  return new Promise((resolveCall, rejectCall) => {
    client[method](request, new grpc.Metadata(), callOptions(), (err, response) => {
      if (err) rejectCall(err);
      else resolveCall(response);
    });
  });
}

async function collect(stream) {
  const out = [];
  for await (const msg of stream) out.push(msg);
  return out;
}

// Runs `fn` and expects it to fail with gRPC status `code`.
async function expectStatus(what, code, fn) {
  try {
    const got = await fn();
    throw new CheckError(`${what}: expected gRPC status ${grpc.status[code]} (${code}), got success: ${JSON.stringify(got)}`);
  } catch (err) {
    if (err instanceof CheckError) throw err;
    check(
      err.code === code,
      `${what}: expected gRPC status ${grpc.status[code]} (${code}), got ${grpc.status[err.code] ?? err.code} (${err.code}): ${err.details ?? err.message}`,
    );
    return err;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
const VERDICTS = ['VERDICT_ROADWORK', 'VERDICT_NO_ROADWORK'];

function checkDetection(d, where) {
  check(d && typeof d === 'object', `${where}: detection missing`);
  const p = d.roadwork_probability;
  check(typeof p === 'number' && Number.isFinite(p) && p >= 0 && p <= 1, `${where}: roadwork_probability ${p} not a number in [0,1]`);
  check(VERDICTS.includes(d.verdict), `${where}: verdict ${d.verdict} not one of ${VERDICTS.join(', ')}`);
  check(Array.isArray(d.votes) && d.votes.length > 0, `${where}: votes is empty or not an array`);
  for (const v of d.votes) {
    check(typeof v.detector === 'string' && v.detector.length > 0, `${where}: a vote has no detector name: ${JSON.stringify(v)}`);
  }
  check(typeof d.image_sha256 === 'string' && HEX64.test(d.image_sha256), `${where}: image_sha256 ${d.image_sha256} is not 64 hex chars`);
}

// Splits an Ask stream into detection / deltas / done and checks their order.
function checkAskEvents(events, where) {
  check(events.length >= 2, `${where}: expected at least detection + done events, got ${events.length}`);
  const kinds = events.map((e) => e.event);
  check(kinds[0] === 'detected', `${where}: first event is ${kinds[0]}, expected detected (events: ${kinds.join(',')})`);
  check(kinds[kinds.length - 1] === 'done', `${where}: last event is ${kinds[kinds.length - 1]}, expected done (events: ${kinds.join(',')})`);
  const middle = kinds.slice(1, -1);
  const firstDelta = middle.indexOf('delta') === -1 ? middle.length : middle.indexOf('delta');
  check(
    middle.slice(0, firstDelta).every((k) => k === 'progress') && middle.slice(firstDelta).every((k) => k === 'delta'),
    `${where}: expected progress events, then only deltas, between detected and done; got ${kinds.join(',')}`,
  );
  const progress = events.slice(1, 1 + firstDelta).map((e) => e.progress);
  check(progress.length > 0 && progress[progress.length - 1].stage === 'dispatched', `${where}: progress ${JSON.stringify(progress)}, expected to end dispatched`);
  const detection = events[0].detected;
  const deltas = events.slice(1 + firstDelta, -1).map((e) => e.delta.text);
  const done = events[events.length - 1].done;
  check(done && typeof done === 'object', `${where}: done event has no payload`);
  check(
    done.answer === deltas.join(''),
    `${where}: done.answer ${JSON.stringify(done.answer)} != concatenated deltas ${JSON.stringify(deltas.join(''))}`,
  );
  return { detection, deltas, done, kinds };
}

async function main() {
  const [addr, imagePath] = process.argv.slice(2);
  if (!addr || !imagePath) {
    process.stderr.write('usage: node client.mjs HOST:PORT IMAGE_PATH\n');
    process.exit(2);
  }
  const image = readFileSync(imagePath);

  const pkgDef = protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
  const proto = grpc.loadPackageDefinition(pkgDef);
  const RouterService = proto.roadwork.v1.RouterService;
  check(typeof RouterService === 'function', 'roadwork.v1.RouterService not found in the loaded proto');
  const healthProto = grpc.loadPackageDefinition(protoLoader.fromJSON(HEALTH_JSON, LOADER_OPTIONS));

  const client = new RouterService(addr, grpc.credentials.createInsecure());
  const health = new healthProto.grpc.health.v1.Health(addr, grpc.credentials.createInsecure());
  try {
    // 1. channel ready + health
    await new Promise((ok, fail) => client.waitForReady(deadline(), (err) => (err ? fail(err) : ok())));
    const h = await unary(health, 'Check', { service: '' });
    check(h.status === 'SERVING', `health: overall status ${h.status}, expected SERVING`);
    emit('health', { status: h.status });

    // 2. Detect
    const det = await unary(client, 'Detect', { image });
    checkDetection(det.detection, 'Detect');
    emit('detect', {
      roadwork_probability: det.detection.roadwork_probability,
      verdict: det.detection.verdict,
      detectors: det.detection.votes.map((v) => v.detector),
      image_sha256: det.detection.image_sha256,
      cached: det.detection.cached,
    });

    // 3. Ask, opening a session
    const question = 'Is there roadwork in this image?';
    const ask1 = await collect(
      client.Ask({ image, question, open_session: true, generation: { max_tokens: 8 } }, new grpc.Metadata(), callOptions()),
    );
    const a1 = checkAskEvents(ask1, 'Ask#1');
    checkDetection(a1.detection.detection, 'Ask#1 detection');
    const done1 = a1.done;
    check(done1.route && done1.route.kind === 'REQUEST_KIND_MULTI_TURN', `Ask#1: route.kind ${done1.route?.kind}, expected REQUEST_KIND_MULTI_TURN`);
    check(typeof done1.session_id === 'string' && done1.session_id.length > 0, 'Ask#1: done.session_id is empty');
    check(
      a1.detection.session_id === done1.session_id,
      `Ask#1: detection.session_id ${a1.detection.session_id} != done.session_id ${done1.session_id}`,
    );
    const completion1 = Number(done1.usage?.completion_tokens);
    check(completion1 > 0, `Ask#1: usage.completion_tokens ${done1.usage?.completion_tokens}, expected > 0`);
    emit('ask', {
      events: a1.kinds.length,
      deltas: a1.deltas.length,
      session_id: done1.session_id,
      pool: done1.route.pool,
      engine: done1.route.engine,
      finish_reason: done1.finish_reason,
      completion_tokens: completion1,
      degraded: done1.degraded,
    });

    // 4. follow-up in the session, no image
    const ask2 = await collect(
      client.Ask({ session_id: done1.session_id, question: 'How many cones?' }, new grpc.Metadata(), callOptions()),
    );
    const a2 = checkAskEvents(ask2, 'Ask#2');
    checkDetection(a2.detection.detection, 'Ask#2 detection');
    check(a2.detection.detection.cached === true, `Ask#2: detection.cached ${a2.detection.detection.cached}, expected true`);
    check(a2.done.route?.kind === 'REQUEST_KIND_MULTI_TURN', `Ask#2: route.kind ${a2.done.route?.kind}, expected REQUEST_KIND_MULTI_TURN`);
    check(a2.done.session_id === done1.session_id, `Ask#2: session_id ${a2.done.session_id}, expected ${done1.session_id}`);
    emit('ask_followup', { events: a2.kinds.length, session_id: a2.done.session_id, pool: a2.done.route.pool });

    // 5. bulk job
    const submitted = await new Promise((ok, fail) => {
      const call = client.SubmitBatch(new grpc.Metadata(), callOptions(), (err, resp) => (err ? fail(err) : ok(resp)));
      call.write({ options: { default_question: 'Is there roadwork?', display_name: 'node' } });
      for (let i = 0; i < 3; i++) call.write({ item: { image, item_id: `n${i}` } });
      call.end();
    });
    const jobId = submitted.job?.job_id;
    check(typeof jobId === 'string' && jobId.length > 0, `SubmitBatch: no job_id in ${JSON.stringify(submitted)}`);
    check(submitted.job.total === 3, `SubmitBatch: job.total ${submitted.job.total}, expected 3`);

    const watch = client.WatchBatch({ job_id: jobId }, new grpc.Metadata(), { deadline: deadline(BATCH_GUARD_MS) });
    const guard = setTimeout(() => watch.cancel(), BATCH_GUARD_MS);
    let lastJob;
    const states = [];
    try {
      for await (const msg of watch) {
        lastJob = msg.job;
        states.push(lastJob.state);
        if (lastJob.state === 'BATCH_STATE_COMPLETED') break;
      }
    } catch (err) {
      throw new CheckError(`WatchBatch ${jobId}: stream failed before COMPLETED (states ${states.join(',')}): ${err.details ?? err.message}`);
    } finally {
      clearTimeout(guard);
      watch.cancel();
    }
    check(
      lastJob?.state === 'BATCH_STATE_COMPLETED',
      `WatchBatch ${jobId}: ended in ${lastJob?.state}, expected BATCH_STATE_COMPLETED (states ${states.join(',')})`,
    );

    const results = (
      await collect(client.ListBatchResults({ job_id: jobId, offset: 0 }, new grpc.Metadata(), callOptions()))
    ).map((m) => m.result);
    check(results.length === 3, `ListBatchResults: ${results.length} results, expected 3`);
    results.forEach((r, i) => {
      const where = `ListBatchResults[${i}]`;
      check(r.index === i, `${where}: index ${r.index}, expected ${i}`);
      check(r.item_id === `n${i}`, `${where}: item_id ${r.item_id}, expected n${i}`);
      check(r.status === 'ITEM_STATUS_SUCCEEDED', `${where}: status ${r.status}, expected ITEM_STATUS_SUCCEEDED (error ${JSON.stringify(r.error)})`);
      check(r.route?.kind === 'REQUEST_KIND_BATCH', `${where}: route.kind ${r.route?.kind}, expected REQUEST_KIND_BATCH`);
      checkDetection(r.detection, `${where} detection`);
    });
    emit('batch', {
      job_id: jobId,
      states,
      succeeded: lastJob.succeeded,
      pools: results.map((r) => r.route.pool),
    });

    // 6. errors, with their google.rpc.Status details
    const e1 = await expectStatus('GetBatch(nope)', grpc.status.NOT_FOUND, () => unary(client, 'GetBatch', { job_id: 'nope' }));
    const d1 = checkReason('GetBatch(nope)', e1, 'JOB_NOT_FOUND');
    check(d1.ErrorInfo.metadata.job_id === 'nope', `GetBatch(nope): metadata ${JSON.stringify(d1.ErrorInfo.metadata)}`);
    const e2 = await expectStatus('Ask(empty question)', grpc.status.INVALID_ARGUMENT, () =>
      collect(client.Ask({ image, question: '' }, new grpc.Metadata(), callOptions())),
    );
    checkReason('Ask(empty question)', e2, 'FIELD_MISSING', 'question');
    const e3 = await expectStatus('Ask(temperature 9)', grpc.status.INVALID_ARGUMENT, () =>
      collect(client.Ask({ image, question: 'q?', generation: { temperature: 9 } }, new grpc.Metadata(), callOptions())),
    );
    checkReason('Ask(temperature 9)', e3, 'OPTION_OUT_OF_RANGE', 'generation.temperature');

    // 7. a full queue (the router runs with max_queue = 0): QUEUE_FULL with a RetryInfo
    const long = client.Ask(
      { image, question: 'Describe it all.', generation: { max_tokens: 256 } },
      new grpc.Metadata(),
      callOptions(),
    );
    long.on('error', () => {}); // its cancel below ends it CANCELLED
    await new Promise((ok, fail) => {
      let seen = 0;
      long.on('data', () => { seen += 1; if (seen === 2) ok(); }); // detection, then a delta: it holds the slot
      long.on('end', () => fail(new CheckError('the long Ask ended before a second one could be sent')));
    });
    const e4 = await expectStatus('Ask while the only slot generates', grpc.status.RESOURCE_EXHAUSTED, () =>
      collect(client.Ask({ image, question: 'Me too?' }, new grpc.Metadata(), callOptions())),
    );
    long.cancel();
    const d4 = checkReason('Ask while the only slot generates', e4, 'QUEUE_FULL');
    const delay = d4.RetryInfo?.retry_delay;
    const delayMs = delay ? Number(delay.seconds) * 1000 + delay.nanos / 1e6 : 0;
    check(delayMs > 0, `QUEUE_FULL: RetryInfo ${JSON.stringify(d4.RetryInfo)}, expected a positive retry_delay`);
    emit('errors', {
      get_batch: { code: e1.code, reason: d1.ErrorInfo.reason },
      ask_empty_question: { code: e2.code, reason: 'FIELD_MISSING', field: 'question' },
      ask_hot: { code: e3.code, field: 'generation.temperature' },
      queue_full: { code: e4.code, retry_delay_ms: delayMs },
    });

    emit('all');
  } finally {
    client.close();
    health.close();
  }
}

main().catch((err) => {
  const reason = err instanceof CheckError ? err.message : `unexpected error: ${err?.stack ?? err}${err?.code !== undefined ? ` (gRPC code ${err.code}: ${err.details})` : ''}`;
  process.stderr.write(`node client test FAILED: ${reason}\n`);
  process.exit(1);
});
