"""Request migration on real SGLang and LMDeploy servers, and SGLang's abort by request id (issue 13).

python -m bench.gpu.migration launch|measure|stop [--work /root/migr] [--out $OUT]
(bench/gpu/migration.sh runs the steps across device calls; docs/engines-gpu.md has the figures)

launch: router L (`roadwork-router serve`, in its own session, so it outlives one device call) launches
  two replicas of SGLang and two of LMDeploy from `[[pools.*.launch]]`, all serving the demo VLM.
measure: router M runs in this process, so the body it sends each replica can be recorded; its pools
  point at L's servers: `sglang` (single-shot) and `lmdeploy` (multi-turn), two replicas each, round
  robin, EOS ignored (`extra_body`).
  cancel: an Ask on SGLang (2,000 tokens) cancelled after 5 deltas, against the same body sent straight
    to SGLang by a client that closes its stream after 5 chunks, interleaved: the tokens SGLang generated
    for each (sglang:generation_tokens_total, read until it has moved and stayed 1 s: the gauge of running
    requests lags) and when the counter last moved.
  migrate, per engine: the greedy answer uninterrupted; then the same Ask with the serving replica's
    process group SIGKILLed after `--kill-after` deltas: whether the client's stream went on and ended
    OK, done.route.migrations, the continuation body the other replica got (and its answer when replayed
    to it directly), the final text against the uninterrupted one, prompt tokens of the continuation
    against the uninterrupted prompt plus the tokens kept, the time from the kill to the next new text.
    With `--late N`, once the killed replicas are back, the same again killed after N deltas.
stop: L stops its servers; what was left running.
Every step writes WORK/migration-<step>.json (copied to OUT).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx

from bench._servers import _grpc_serving
from bench.gpu.vision_engines import BASE_ENV, GEN_TOKENS, NAME, SAMPLE, SITES, _engine_args, server_sid
from engines.base import GenerationRequest
from engines.openai_http import OpenAIHTTPEngine
from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc

T = TypeVar("T")
ENGINES = ("sglang", "lmdeploy")
PORTS = {"sglang": (30000, 31000), "lmdeploy": (23333, 24333)}  # two replicas each
L_PORT = 50071
DETECT_DEVICE = os.environ.get("DETECT_DEVICE", "cuda")
ROUTES = {"ROADWORK__ROUTING__SINGLE_SHOT": '["sglang"]', "ROADWORK__ROUTING__MULTI_TURN": '["lmdeploy"]',
          "ROADWORK__ROUTING__BATCH": '["lmdeploy"]'}  # fmt: skip
QUESTION = "Describe the roadwork."
log = logging.getLogger("bench.gpu.migration")


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def pool_env(engine: str, **fields: Any) -> dict[str, str]:
    """ROADWORK__POOLS__<ENGINE>__* overrides for a vision pool of the demo VLM on `engine`."""
    base = {"engine": engine, "vision": True, "model": NAME, "context_tokens": 4096, "min_pixels": 50176,
            "max_pixels": 150528, "per_request_pixels": engine != "sglang"}  # fmt: skip
    return {f"ROADWORK__POOLS__{engine.upper()}__{k.upper()}": v if isinstance(v, str) else json.dumps(v)
            for k, v in {**base, **fields}.items()}  # fmt: skip


def launch_entry(engine: str, port: int, model: str) -> dict[str, Any]:
    """One [[pools.<engine>.launch]] entry, with the flags bench.gpu.vision_engines used on the H200."""
    return {"model": model, "port": port, "python": sys.executable, "served_model_name": NAME,
            "extra_args": _engine_args(engine), "env": {**BASE_ENV, "PYTHONPATH": SITES[engine]},
            "start_timeout_s": 560}  # fmt: skip


def common_env(work: Path, name: str) -> dict[str, str]:
    return {**BASE_ENV, **ROUTES, "ROADWORK__SERVER__METRICS_PORT": "0", "ROADWORK__SERVER__GRACE_S": "1",
            "ROADWORK__STORAGE__PATH": str(work / name / "router.sqlite3"),
            "ROADWORK__GENERATION__MAX_TOKENS_CAP": "4000", "ROADWORK__DETECTORS__0__DEVICE": DETECT_DEVICE,
            "ROADWORK__DETECTORS__1__DEVICE": DETECT_DEVICE}  # fmt: skip


def session_pids(sid: int) -> list[int]:
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    out.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                pass
    return out


def alive(pids: list[int]) -> list[int]:
    left = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            if "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:3]:
                left.append(pid)
        except (ProcessLookupError, FileNotFoundError):
            pass
    return left


async def health(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(url(port) + "/health")).status_code == 200
    except httpx.HTTPError:
        return False


async def metric(ports: tuple[int, ...], name: str) -> float | None:
    """The sum over label sets and servers of one metric (None where a server does not answer)."""
    total = 0.0
    async with httpx.AsyncClient(timeout=5) as client:
        for port in ports:
            try:
                text = (await client.get(url(port) + "/metrics")).text
            except httpx.HTTPError:
                return None
            for line in text.splitlines():
                if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
                    total += float(line.rsplit(" ", 1)[1])
    return total


# -- launch / stop -------------------------------------------------------------------------------


def spawn_l(work: Path, model: str) -> int:
    """Router L, `roadwork-router serve` in its own session, launching two servers per engine; its pid."""
    env = common_env(work, "L") | {"ROADWORK__SERVER__PORT": str(L_PORT)}
    for engine in ENGINES:
        env |= pool_env(engine, launch=[launch_entry(engine, p, model) for p in PORTS[engine]])
    (work / "L").mkdir(parents=True, exist_ok=True)
    with open(work / "L" / "router.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "router.cli.main", "serve"], env={**os.environ, **env},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    return proc.pid


async def step_launch(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work)
    state_path = work / "state.json"
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}
    if not state or not alive([state["pid"]]):
        state = {"pid": spawn_l(work, args.model), "t0": time.time()}
        state_path.write_text(json.dumps(state))
    t0 = time.perf_counter()
    check = _grpc_serving(f"127.0.0.1:{L_PORT}")
    serving = None
    while time.perf_counter() - t0 < args.deadline_s and alive([state["pid"]]):
        if await check():
            serving = round(time.time() - state["t0"], 1)
            break
        await asyncio.sleep(2)
    servers = {str(p): {"healthy": await health(p), "sid": server_sid(p)} for e in ENGINES for p in PORTS[e]}
    return {"router_pid": state["pid"], "router_alive": alive([state["pid"]]) != [],
            "serving_after_s": serving, "servers": servers}  # fmt: skip


async def step_stop(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work)
    state = json.loads((work / "state.json").read_text())
    t0 = time.perf_counter()
    try:
        os.kill(state["pid"], signal.SIGTERM)
    except ProcessLookupError:
        pass
    ports = [p for e in ENGINES for p in PORTS[e]]
    left = ports
    while left and time.perf_counter() - t0 < 60:
        await asyncio.sleep(1)
        left = [p for p in ports if server_sid(p)]
    return {"stopped_in_s": round(time.perf_counter() - t0, 1), "servers_left": left}


# -- the in-process router M ----------------------------------------------------------------------


class InProcessRouter:
    """A RouterApp on its own event-loop thread (as the tests run it), so its engines can be watched."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="router-M")
        self.thread.start()

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def start(self, env: dict[str, str], timeout_s: float) -> int:
        from router.api.app import RouterApp
        from router.config import load_config

        async def make() -> RouterApp:
            return RouterApp(load_config(env=env))

        self.app = await self.call(make())
        port = await self.call(self.app.start())
        await self.call(self.app.wait_ready(timeout_s))
        return port

    async def stop(self) -> None:
        await self.call(self.app.stop(0.5))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Recorder:
    """Every body router M sends a replica of the watched pools, and every abort it posts."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.aborts: list[dict[str, Any]] = []

    def attach(self, router: InProcessRouter) -> None:
        for name in ENGINES:
            for replica in router.app.pools[name].replicas:
                engine = replica.engine
                assert isinstance(engine, OpenAIHTTPEngine)
                self._spy(engine, replica.name)

    def _spy(self, engine: OpenAIHTTPEngine, name: str) -> None:
        payload, post_abort = engine.payload, engine._post_abort

        def body(request: GenerationRequest, rid: str = "") -> dict[str, Any]:
            sent = payload(request, rid)
            self.bodies.append({"t": time.perf_counter(), "replica": name, "body": sent})
            return sent

        async def abort(path: str, rid: str) -> None:
            t = time.perf_counter()
            await post_abort(path, rid)
            self.aborts.append({"t": t, "rid": rid, "took_s": round(time.perf_counter() - t, 4)})

        engine.payload = body  # type: ignore[method-assign]
        engine._post_abort = abort  # type: ignore[method-assign]


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}"[:500])


async def stream_body(port: int, body: dict[str, Any], close_after: int = 0) -> dict[str, Any]:
    """POST `body` to the server's chat completions, stream it; text, usage, status. `close_after` > 0:
    close the stream after that many content chunks (a client leaving early)."""
    parts: list[str] = []
    usage: dict[str, Any] = {}
    finish = None
    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=180) as client:
        async with client.stream("POST", url(port) + "/v1/chat/completions", json=body) as resp:
            if resp.status_code != 200:
                return {"status": resp.status_code, "error": (await resp.aread()).decode(errors="replace")[:1500]}
            async for line in resp.aiter_lines():
                if not line.startswith("data:") or line.strip() == "data: [DONE]":
                    continue
                chunk = json.loads(line[5:])
                if chunk.get("error"):
                    return {"status": 200, "error": str(chunk["error"])[:1500], "text": "".join(parts)}
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    if text := (choice.get("delta") or {}).get("content"):
                        parts.append(text)
                    finish = choice.get("finish_reason") or finish
                if close_after and len(parts) >= close_after:
                    break
    return {"status": 200, "text": "".join(parts), "chunks": len(parts), "usage": usage, "finish_reason": finish,
            "wall_s": round(time.perf_counter() - t0, 3)}  # fmt: skip


def fresh_rid(body: dict[str, Any]) -> dict[str, Any]:
    """The body with a new `rid` where it had one (SGLang refuses a rid it has seen in flight)."""
    return body | {"rid": uuid.uuid4().hex} if "rid" in body else dict(body)


def first_diff(a: str, b: str) -> int | None:
    """The first index where a and b differ (None: equal)."""
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


async def settle(
    ports: tuple[int, ...], name: str, before: float | None, limit_s: float = 8.0, quiet_s: float = 1.0
) -> tuple[float | None, float | None]:
    """Wait until counter `name` has moved past `before` and then stayed `quiet_s` (or `limit_s` passed):
    its value, and the seconds until it last moved (when the engine counted the request's end)."""
    t0 = time.perf_counter()
    last, moved = before, None
    while time.perf_counter() - t0 < limit_s:
        value = await metric(ports, name)
        if value is not None and value != last:
            last, moved = value, time.perf_counter() - t0
        if moved is not None and time.perf_counter() - t0 - moved >= quiet_s:
            break
        await asyncio.sleep(0.05)
    return last, None if moved is None else round(moved, 2)


def delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


# -- cancel ---------------------------------------------------------------------------------------


async def cancel_trials(stub: Any, rec: Recorder, image: bytes, trials: int, after: int = 5) -> dict[str, Any]:
    ports = PORTS["sglang"]
    gen = GEN_TOKENS["sglang"]
    rows: list[dict[str, Any]] = []
    body: dict[str, Any] | None = None
    opts = pb.GenerationOptions(max_tokens=2000, temperature=0.0)
    for i in range(trials):
        # Through the router: the client cancels its Ask after `after` deltas.
        before = await metric(ports, gen)
        n0, a0 = len(rec.bodies), len(rec.aborts)
        call = stub.Ask(pb.AskRequest(image=image, question="Describe the scene.", generation=opts), timeout=120)
        deltas = 0
        async for event in call:
            deltas += event.HasField("delta")
            if deltas >= after:
                call.cancel()
                break
        t_cancel = time.perf_counter()
        after_total, counted_s = await settle(ports, gen, before)
        sent = rec.bodies[n0] if len(rec.bodies) > n0 else None
        aborts = rec.aborts[a0:]
        body = sent["body"] if sent else body
        rows.append({"trial": i, "via": "router", "replica": sent["replica"] if sent else None,
                     "deltas_before_cancel": deltas, "counted_after_s": counted_s,
                     "tokens_generated": delta(before, after_total),
                     "abort_posted_after_cancel_ms": round((aborts[0]["t"] - t_cancel) * 1e3, 1) if aborts else None,
                     "abort_took_ms": round(aborts[0]["took_s"] * 1e3, 1) if aborts else None})  # fmt: skip
        if body is None:
            continue
        # Direct: the router's body (no rid) to one replica, the stream closed after `after` chunks.
        port = ports[i % 2]
        direct = {k: v for k, v in body.items() if k != "rid"}
        before = await metric(ports, gen)
        seen = await stream_body(port, direct, close_after=after)
        after_total, counted_s = await settle(ports, gen, before)
        rows.append({"trial": i, "via": "direct", "replica": url(port), "chunks_before_close": seen.get("chunks"),
                     "tokens_seen_at_close": (seen.get("usage") or {}).get("completion_tokens"),
                     "counted_after_s": counted_s, "tokens_generated": delta(before, after_total)})  # fmt: skip

    def summary(via: str) -> dict[str, Any]:
        tok = [r["tokens_generated"] for r in rows if r["via"] == via and r["tokens_generated"] is not None]
        idle = [r["counted_after_s"] for r in rows if r["via"] == via and r["counted_after_s"] is not None]
        return {"trials": sum(r["via"] == via for r in rows),
                "tokens_generated_p50": statistics.median(tok) if tok else None,
                "tokens_generated_max": max(tok) if tok else None, "tokens_generated_min": min(tok) if tok else None,
                "counted_after_s_p50": round(statistics.median(idle), 2) if idle else None}  # fmt: skip

    return {"after": after, "max_tokens": 2000, "router": summary("router"), "direct": summary("direct"), "rows": rows}


# -- migrate --------------------------------------------------------------------------------------


async def collect(call: Any) -> tuple[str, Any, dict[str, str] | None]:
    text, done, error = "", None, None
    try:
        async for event in call:
            if event.HasField("delta"):
                text += event.delta.text
            elif event.HasField("done"):
                done = event.done
    except grpc.aio.AioRpcError as exc:
        error = {"code": exc.code().name, "details": (exc.details() or "")[:1000]}
    return text, done, error


def usage_of(done: Any) -> dict[str, int] | None:
    if done is None:
        return None
    u = done.usage
    return {"prompt": u.prompt_tokens, "completion": u.completion_tokens, "cached": u.cached_tokens}


async def migrate_trial(
    stub: Any, rec: Recorder, engine: str, image: bytes, max_tokens: int, kill_after: int
) -> dict[str, Any]:
    """The uninterrupted answer, then the same Ask with its replica SIGKILLed after `kill_after` deltas."""
    opts = pb.GenerationOptions(max_tokens=max_tokens, temperature=0.0)
    # Multi-turn (a new session) reaches the lmdeploy pool, single-shot the sglang one.
    req = pb.AskRequest(image=image, question=QUESTION, generation=opts, open_session=engine == "lmdeploy")
    out: dict[str, Any] = {"engine": engine, "max_tokens": max_tokens, "kill_after_deltas": kill_after}
    n0 = len(rec.bodies)
    t0 = time.perf_counter()
    whole, whole_done, whole_error = await collect(stub.Ask(req, timeout=180))
    out["uninterrupted"] = {"replica": rec.bodies[n0]["replica"] if len(rec.bodies) > n0 else None,
                            "s": round(time.perf_counter() - t0, 3), "chars": len(whole), "usage": usage_of(whole_done),
                            "finish_reason": whole_done.finish_reason if whole_done else None, "error": whole_error,
                            "head": whole[:400]}  # fmt: skip
    n1 = len(rec.bodies)
    call = stub.Ask(req, timeout=180)
    text, timeline = "", []
    killed: dict[str, Any] = {}
    done, error = None, None
    try:
        async for event in call:
            if event.HasField("delta"):
                text += event.delta.text
                timeline.append((time.perf_counter(), len(text)))
                if not killed and len(timeline) >= kill_after:
                    replica = rec.bodies[n1]["replica"]
                    port = int(replica.rsplit(":", 1)[1])
                    sid = server_sid(port)
                    if sid is None:
                        raise RuntimeError(f"no server process found on port {port}")
                    pids = session_pids(sid)
                    t_kill = time.perf_counter()
                    os.killpg(sid, signal.SIGKILL)
                    killed = {"replica": replica, "sid": sid, "pids": len(pids), "t": t_kill,
                              "deltas_seen": len(timeline), "chars_seen": len(text), "pid_list": pids}  # fmt: skip
            elif event.HasField("done"):
                done = event.done
    except grpc.aio.AioRpcError as exc:
        error = {"code": exc.code().name, "details": (exc.details() or "")[:1000]}
    t_end = time.perf_counter()
    if not killed:
        return out | {"error": "the answer ended before the kill", "text": text[:400], "stream_error": error}
    await asyncio.sleep(1.0)
    pids = killed.pop("pid_list")
    killed["left_alive_1s_after"] = len(alive(pids))
    t_kill = killed.pop("t")
    bodies = rec.bodies[n1:]
    out["killed"] = killed
    out["client"] = {"stream_error": error, "ended_ok": error is None and done is not None,
                     "finish_reason": done.finish_reason if done else None, "usage": usage_of(done),
                     "answer_equals_deltas": done is not None and done.answer == text,
                     "final_replica": done.route.replica if done else None,
                     "end_after_kill_s": round(t_end - t_kill, 3), "chars": len(text)}  # fmt: skip
    moves = [{"from": m.from_replica, "to_pool": m.to_pool, "to": m.to_replica, "tokens_kept": m.tokens_kept,
              "chars_kept": m.chars_kept} for m in (done.route.migrations if done else [])]  # fmt: skip
    out["migrations"] = moves
    out["bodies_sent"] = [{"replica": b["replica"], "max_tokens": b["body"].get("max_tokens"),
                           "continue_fields": {k: b["body"][k] for k in ("continue_final_message",
                                               "add_generation_prompt") if k in b["body"]},
                           "last_role": b["body"]["messages"][-1]["role"]} for b in bodies]  # fmt: skip
    if not moves:
        return out
    kept = moves[0]["chars_kept"]
    after_kill = [(t, n) for t, n in timeline if t > t_kill]
    new_text = [(t, n) for t, n in after_kill if n > kept]
    out["timing"] = {"kill_to_next_delta_ms": round((after_kill[0][0] - t_kill) * 1e3, 1) if after_kill else None,
                     "kill_to_next_new_text_ms": round((new_text[0][0] - t_kill) * 1e3, 1) if new_text else None,
                     "deltas_after_kill_from_killed_replica": sum(1 for _, n in after_kill if n <= kept)}  # fmt: skip
    diff = first_diff(text, whole)
    out["text"] = {"equal_to_uninterrupted": text == whole, "first_difference_at": diff,
                   "uninterrupted_chars": len(whole), "kept_is_prefix_of_uninterrupted": whole.startswith(text[:kept]),
                   "kept": text[:kept], "around_splice": text[max(0, kept - 40) : kept + 120],
                   "uninterrupted_around_splice": whole[max(0, kept - 40) : kept + 120],
                   "at_difference": None if diff is None else {
                       "migrated": text[max(0, diff - 40) : diff + 80],
                       "uninterrupted": whole[max(0, diff - 40) : diff + 80]}}  # fmt: skip
    cont = bodies[1]["body"] if len(bodies) > 1 else None
    if cont is None:
        return out
    port = int(bodies[1]["replica"].rsplit(":", 1)[1])
    replay = await stream_body(port, fresh_rid(cont))
    rest = text[kept:]
    out["replay"] = {"status": replay["status"], "error": replay.get("error"), "usage": replay.get("usage"),
                     "equals_continuation": replay.get("text") == rest,
                     "first_difference_at": first_diff(replay.get("text") or "", rest),
                     "head": (replay.get("text") or "")[:200]}  # fmt: skip
    whole_prompt = (out["uninterrupted"]["usage"] or {}).get("prompt")
    cont_prompt = (out["client"]["usage"] or {}).get("prompt")
    out["prompt_tokens"] = {"uninterrupted": whole_prompt, "continuation": cont_prompt,
                            "continuation_replayed": (replay.get("usage") or {}).get("prompt_tokens"),
                            "tokens_kept": moves[0]["tokens_kept"],
                            "continuation_minus_uninterrupted_minus_kept": None if not (whole_prompt and cont_prompt)
                            else cont_prompt - whole_prompt - moves[0]["tokens_kept"]}  # fmt: skip
    if engine == "sglang":  # control: the same body without continue_final_message
        plain = {k: v for k, v in fresh_rid(cont).items() if k != "continue_final_message"}
        control = await stream_body(port, plain)
        out["control_without_continue_flag"] = {"status": control["status"], "error": control.get("error"),
                                                "usage": control.get("usage"),
                                                "head": (control.get("text") or "")[:200]}  # fmt: skip
    return out


async def wait_all_healthy(limit_s: float) -> float | None:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        if all([await health(p) for e in ENGINES for p in PORTS[e]]):
            return round(time.perf_counter() - t0, 1)
        await asyncio.sleep(1)
    return None


async def step_measure(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.perf_counter()
    work = Path(args.work)
    warnings = Warnings()
    logging.basicConfig(filename=str(work / "M.log"), level=logging.INFO, force=True)
    logging.getLogger().addHandler(warnings)
    out: dict[str, Any] = {"healthy_at_start": {str(p): await health(p) for e in ENGINES for p in PORTS[e]}}
    out["all_healthy_after_s"] = await wait_all_healthy(150)  # replicas killed by a last run may be restarting
    env = common_env(work, "M") | {"ROADWORK__SERVER__PORT": "0"}
    for engine in ENGINES:
        env |= pool_env(engine, replicas=[url(p) for p in PORTS[engine]], policy="round_robin",
                        metrics_interval_s=0, extra_body={"ignore_eos": True})  # fmt: skip
    router = InProcessRouter()
    t0 = time.perf_counter()
    port = await router.start(env, 240)
    out["router_M_ready_s"] = round(time.perf_counter() - t0, 1)
    rec = Recorder()
    rec.attach(router)
    image = SAMPLE.read_bytes()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.RouterServiceStub(channel)  # type: ignore[no-untyped-call]
            await stub.Detect(pb.DetectRequest(image=image), timeout=60)  # the detection is cached from here on
            if args.cancel_trials:
                try:
                    out["cancel"] = await cancel_trials(stub, rec, image, args.cancel_trials)
                except Exception as exc:
                    out["cancel"] = {"error": f"{type(exc).__name__}: {exc}"[:800]}
            out["migrate"] = []
            for kill_after in [args.kill_after, *([args.late] if args.late else [])]:
                if kill_after != args.kill_after:
                    left = args.deadline_s - (time.perf_counter() - t_start) - 60
                    waited = await wait_all_healthy(max(0.0, left))
                    out[f"replicas_back_before_kill_after_{kill_after}_s"] = waited
                    if waited is None:
                        break
                for engine in ENGINES:
                    try:
                        out["migrate"].append(
                            await migrate_trial(stub, rec, engine, image, args.max_tokens, kill_after)
                        )
                    except Exception as exc:
                        out["migrate"].append({"engine": engine, "kill_after_deltas": kill_after,
                                               "error": f"{type(exc).__name__}: {exc}"[:800]})  # fmt: skip
    finally:
        out["warnings"] = warnings.lines[-40:]
        await router.stop()
    return out


def table(report: dict[str, Any]) -> str:
    lines = []
    c = report.get("cancel") or {}
    for via in ("router", "direct"):
        s = c.get(via) or {}
        lines.append(f"SGLang cancel after 5 deltas, {via:6}: tokens generated p50 {s.get('tokens_generated_p50')} "
                     f"(min {s.get('tokens_generated_min')}, max {s.get('tokens_generated_max')}), counted "
                     f"{s.get('counted_after_s_p50')} s after, {s.get('trials')} trials")  # fmt: skip
    lines.append("engine    kill@  continued  moves (tokens/chars kept)  equal  1st diff  replay=  kill->new text ms"
                 "  prompt delta")  # fmt: skip
    for m in report.get("migrate") or []:
        if "client" not in m:
            lines.append(f"{m.get('engine'):9} {m.get('kill_after_deltas')}: {m.get('error')}")
            continue
        moves = ", ".join(f"{x['tokens_kept']}/{x['chars_kept']}" for x in m["migrations"]) or "none"
        t, r, p = m.get("text") or {}, m.get("replay") or {}, m.get("prompt_tokens") or {}
        ms = (m.get("timing") or {}).get("kill_to_next_new_text_ms")
        lines.append(f"{m['engine']:9} {m['kill_after_deltas']:5}  {m['client']['ended_ok']!s:9}  {moves:25}  "
                     f"{t.get('equal_to_uninterrupted')!s:5}  {t.get('first_difference_at')!s:8}  "
                     f"{r.get('equals_continuation')!s:7}  {ms!s:17}"
                     f"  {p.get('continuation_minus_uninterrupted_minus_kept')}")  # fmt: skip
    return "\n".join(lines)


STEPS = {"launch": step_launch, "measure": step_measure, "stop": step_stop}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=tuple(STEPS))
    p.add_argument("--work", default="/root/migr")
    p.add_argument("--out", default=os.environ.get("OUT", "/tmp"))
    p.add_argument("--model", default="/root/migr/roadwork-vlm", help="the demo VLM folder")
    p.add_argument("--deadline-s", type=float, default=330, help="launch: wait for L; measure: the whole step")
    p.add_argument("--cancel-trials", type=int, default=5)
    p.add_argument("--max-tokens", type=int, default=400)
    p.add_argument("--kill-after", type=int, default=3, help="deltas the client has seen when the replica is killed")
    p.add_argument("--late", type=int, default=0, help="also kill after this many deltas, once replicas are back")
    a = p.parse_args()
    Path(a.work).mkdir(parents=True, exist_ok=True)
    report = asyncio.run(STEPS[a.step](a))
    text = json.dumps(report, indent=2, default=str) + "\n"
    Path(a.work, f"migration-{a.step}.json").write_text(text)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    Path(a.out, f"migration-{a.step}.json").write_text(text)
    if a.step == "measure":
        print(table(report))
    print(text[-4000:])


if __name__ == "__main__":
    main()
