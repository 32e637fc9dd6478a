"""The demo VLM on vLLM, SGLang and LMDeploy at once on one GPU, each launched by the router.

python -m bench.gpu.vision_engines start|kinds|options|stop [--work /root/vision] [--out $OUT]
(bench/gpu/vision_engines.sh runs the steps across device calls; docs/engines-gpu.md has the figures)

start: seven router processes start in their own sessions (so they outlive one device call):
  A launches the three engines in bf16 as the product's default pools (vllm, sglang, lmdeploy);
  B-<engine>-<variant> each launch one more server of an engine from launch options:
  `kv_cache_dtype = fp8` (kv8), and `quantization = fp8` with it (w8);
  two vLLM servers of a tiny random Qwen2-VL with a 32k context serve `bench.vision`.
kinds: through A, each request kind with an image reaches its engine (single-shot: vLLM,
  multi-turn: SGLang, a bulk job: LMDeploy); through one router per engine (C-<engine>), each
  engine's answer, verdict, follow-ups' prefix-cache share and cancellation (generation stops).
options: per server (3 engines x bf16 / kv8 / w8): GPU memory (nvidia-smi, the server's whole
  process session), KV-cache capacity as the engine logs it, and output tokens/s with 64 streams,
  each with its own image (three bursts, median).
stop: the routers stop their servers; what was left running, and the engines' log tails.
Every step writes WORK/<step>.json (copied to OUT).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import httpx

from bench._servers import _grpc_serving
from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "router" / "assets" / "sample_roadwork.jpg"
NAME = "roadwork-vlm"
SITES = {"vllm": "/root/site", "sglang": "/root/sgsite", "lmdeploy": "/root/lmsite"}
BASE_ENV = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
            "VLLM_USE_FLASHINFER_SAMPLER": "0", "VLLM_NO_USAGE_STATS": "1"}  # fmt: skip
# KV cache: vLLM gets a fixed size in bytes (its capacity in tokens is the figure); SGLang and LMDeploy a
# fixed capacity in tokens (their memory is the figure): neither takes a byte size that is independent of
# what else is on the card while it starts, and eleven servers start at once here.
KV_BYTES = 8 << 30
KV_TOKENS = 4 << 20
LM_BLOCK = 64  # LMDeploy's --cache-block-seq-len default
PORTS = {("vllm", "bf16"): 8000, ("vllm", "kv8"): 8100, ("vllm", "w8"): 8200,
         ("sglang", "bf16"): 30000, ("sglang", "kv8"): 31000, ("sglang", "w8"): 32000,
         ("lmdeploy", "bf16"): 23333, ("lmdeploy", "kv8"): 24333, ("lmdeploy", "w8"): 25333}  # fmt: skip
TINY_PORTS = (8300, 8400)
# One router per fp8 variant: a variant its engine refuses then stops only its own router.
ROUTER_PORTS = {"A": 50051, "B-vllm-kv8": 50052, "B-vllm-w8": 50053, "B-sglang-kv8": 50054, "B-sglang-w8": 50055,
                "B-lmdeploy-kv8": 50056, "B-lmdeploy-w8": 50057,
                "C-vllm": 50061, "C-sglang": 50062, "C-lmdeploy": 50063}  # fmt: skip
VARIANTS = {"bf16": {}, "kv8": {"kv_cache_dtype": "fp8"}, "w8": {"kv_cache_dtype": "fp8", "quantization": "fp8"}}
DETECT_DEVICE = os.environ.get("DETECT_DEVICE", "cuda")
KV_NAMES = {"sglang": "fp8_e4m3"}  # SGLang's name for an fp8 KV cache; vLLM and LMDeploy take "fp8"


def _engine_args(engine: str) -> list[str]:
    if engine == "vllm":
        return ["--max-model-len", "4096", "--gpu-memory-utilization", "0.1", "--kv-cache-memory-bytes", str(KV_BYTES)]
    if engine == "sglang":  # no FA3 library and no flashinfer cubins carried (../shared/tools/gpu-sglang):
        # Triton attention for the LLM, SDPA for the vision tower (its default on Hopper is FA3 too)
        return ["--attention-backend", "triton", "--mm-attention-backend", "sdpa", "--sampling-backend", "pytorch",
                "--context-length", "4096", "--mem-fraction-static", "0.9",
                "--max-total-tokens", str(KV_TOKENS)]  # fmt: skip
    return ["--session-len", "4096", "--num-gpu-blocks", str(KV_TOKENS // LM_BLOCK), "--vision-max-batch-size", "32"]


def launch_entry(engine: str, variant: str, model: str) -> dict[str, Any]:
    """One [[pools.*.launch]] entry: the engine's own site on PYTHONPATH, the variant's launch options."""
    options = dict(VARIANTS[variant])
    if "kv_cache_dtype" in options:
        options["kv_cache_dtype"] = KV_NAMES.get(engine, "fp8")
    return {"model": model, "port": PORTS[engine, variant], "python": sys.executable, "served_model_name": NAME,
            "extra_args": _engine_args(engine), "env": {**BASE_ENV, "PYTHONPATH": SITES[engine]},
            "start_timeout_s": 560, **options}  # fmt: skip


def _pool(name: str, engine: str, **fields: Any) -> dict[str, str]:
    """ROADWORK__POOLS__<NAME>__* overrides for a vision pool of the demo VLM."""
    base = {"engine": engine, "vision": "true", "model": NAME, "context_tokens": "4096", "metrics_interval_s": "1",
            "per_request_pixels": "true" if engine != "sglang" else "false", "min_pixels": "50176",
            "max_pixels": "150528"}  # fmt: skip
    out = {}
    for key, value in {**base, **fields}.items():
        out[f"ROADWORK__POOLS__{name.upper()}__{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return out


def router_envs(model: str, engines: list[str]) -> dict[str, dict[str, str]]:
    """The start step's routers: A (the product's pools for `engines`), B-<engine>-<variant> (one fp8 server each)."""
    envs: dict[str, dict[str, str]] = {"A": {}}
    for engine in engines:
        envs["A"] |= _pool(engine, engine, launch=[launch_entry(engine, "bf16", model)])
        for variant in ("kv8", "w8"):
            b = _pool(variant, engine, launch=[launch_entry(engine, variant, model)])
            routes = {f"ROADWORK__ROUTING__{k}": f'["{variant}"]' for k in ("SINGLE_SHOT", "MULTI_TURN", "BATCH")}
            envs[f"B-{engine}-{variant}"] = b | routes
    return envs


def per_engine_env(engine: str) -> dict[str, str]:
    """C-<engine>: every kind to one of A's servers; single-shot through a pool that ignores EOS (cancel)."""
    url = [f"http://127.0.0.1:{PORTS[engine, 'bf16']}"]
    env = _pool("main", engine, replicas=url, policy="session_affinity")
    env |= _pool("long", engine, replicas=url, extra_body={"ignore_eos": True})
    return env | {"ROADWORK__ROUTING__SINGLE_SHOT": '["long"]', "ROADWORK__ROUTING__MULTI_TURN": '["main"]',
                  "ROADWORK__ROUTING__BATCH": '["main"]'}  # fmt: skip


def spawn_router(name: str, env: dict[str, str], work: Path) -> int:
    """`roadwork-router serve` in its own session, detectors on the GPU; returns its pid."""
    d = work / name
    d.mkdir(parents=True, exist_ok=True)
    full = {**os.environ, **BASE_ENV, **env, "ROADWORK__SERVER__PORT": str(ROUTER_PORTS[name]),
            "ROADWORK__SERVER__METRICS_PORT": "0", "ROADWORK__STORAGE__PATH": str(d / "router.sqlite3"),
            "ROADWORK__DETECTORS__0__DEVICE": DETECT_DEVICE,
            "ROADWORK__DETECTORS__1__DEVICE": DETECT_DEVICE}  # fmt: skip
    with open(d / "router.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "router.cli.main", "serve"], env=full, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    return proc.pid


def spawn_tiny_vllm(port: int, model: str, work: Path) -> int:
    """vLLM on the tiny random Qwen2-VL (32k context) for bench.vision, in its own session."""
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--served-model-name",
            "tiny-vlm", "--port", str(port), "--max-model-len", "32768", "--gpu-memory-utilization", "0.1",
            "--kv-cache-memory-bytes", str(4 << 30), "--enable-prompt-tokens-details"]  # fmt: skip
    env = {**os.environ, **BASE_ENV, "PYTHONPATH": SITES["vllm"]}
    with open(work / f"tiny-vllm-{port}.log", "ab") as log:
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True).pid


async def wait_routers(names: list[str], deadline_s: float) -> dict[str, float | None]:
    """Seconds until each router's gRPC health says SERVING (None: not within the deadline)."""
    t0 = time.perf_counter()
    ready: dict[str, float | None] = dict.fromkeys(names)
    checks = {n: _grpc_serving(f"127.0.0.1:{ROUTER_PORTS[n]}") for n in names}
    while any(v is None for v in ready.values()) and time.perf_counter() - t0 < deadline_s:
        for n in names:
            if ready[n] is None and await checks[n]():
                ready[n] = round(time.perf_counter() - t0, 1)
        await asyncio.sleep(2)
    return ready


async def http_ready(ports: tuple[int, ...], deadline_s: float) -> dict[int, bool]:
    t0, ok = time.perf_counter(), dict.fromkeys(ports, False)
    async with httpx.AsyncClient(timeout=3) as client:
        while not all(ok.values()) and time.perf_counter() - t0 < deadline_s:
            for p in ports:
                try:
                    ok[p] = ok[p] or (await client.get(f"http://127.0.0.1:{p}/health")).status_code == 200
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(2)
    return ok


async def step_start(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work)
    state: dict[str, Any] = {"t0": time.time(), "pids": {}}
    if not (work / "state.json").exists():
        for name, env in router_envs(args.model, args.engines).items():
            state["pids"][name] = spawn_router(name, env, work)
        for port in TINY_PORTS[: args.tiny]:
            state["pids"][f"tiny-{port}"] = spawn_tiny_vllm(port, args.tiny_model, work)
        (work / "state.json").write_text(json.dumps(state))
    state = json.loads((work / "state.json").read_text())
    names = [n for n in state["pids"] if n in ROUTER_PORTS]
    ready = await wait_routers(names, args.deadline_s)
    tiny = await http_ready(TINY_PORTS[: args.tiny], 5)
    elapsed = round(time.time() - state["t0"], 1)
    return {"routers_serving_after_s": ready, "tiny_vllm_healthy": tiny, "since_spawn_s": elapsed,
            "all_ready": all(v is not None for v in ready.values()) and all(tiny.values())}  # fmt: skip


async def metric_sum(port: int, name: str) -> float:
    """The sum over label sets of one metric on an engine's /metrics."""
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


GEN_TOKENS = {"vllm": "vllm:generation_tokens_total", "sglang": "sglang:generation_tokens_total",
              "lmdeploy": "lmdeploy:generation_tokens_total"}  # fmt: skip
# The engine's own count of prompt tokens served from its prefix cache (beside what its usage reports).
CACHED = {"vllm": "vllm:prefix_cache_hits_total", "sglang": "sglang:cached_tokens_total",
          "lmdeploy": "lmdeploy:cached_tokens_total"}  # fmt: skip
RUNNING = {"vllm": "vllm:num_requests_running", "sglang": "sglang:num_running_reqs",
           "lmdeploy": "lmdeploy:num_requests_running"}  # fmt: skip


async def ask(stub: pb_grpc.RouterServiceStub, **kw: Any) -> dict[str, Any]:
    """One Ask, timed at the client, with what the done event says about route, usage and image."""
    t0, ttft, done = time.perf_counter(), None, pb.AskDoneEvent()
    async for event in stub.Ask(pb.AskRequest(**kw), timeout=120):
        if event.HasField("delta") and ttft is None:
            ttft = (time.perf_counter() - t0) * 1e3
        if event.HasField("done"):
            done = event.done
    image = done.image
    out = {"pool": done.route.pool, "engine": done.route.engine, "degraded": done.degraded,
           "answer": done.answer, "prompt": done.usage.prompt_tokens, "cached": done.usage.cached_tokens,
           "completion": done.usage.completion_tokens, "session_id": done.session_id,
           "ttft_ms": round(ttft, 1) if ttft else None, "total_ms": round((time.perf_counter() - t0) * 1e3, 1),
           "image": {"sent": f"{image.width}x{image.height}", "tokens": image.image_tokens,
                     "engine_count": image.image_tokens_reported, "bytes": image.bytes} if image.width else None,
           "notices": list(done.notices)}  # fmt: skip
    if done.HasField("verdict"):
        v = done.verdict
        out["verdict"] = {"roadwork": v.roadwork, "active": v.active, "lanes_affected": v.lanes_affected,
                          "objects": {o.type: o.count for o in v.objects}, "confidence": round(v.confidence, 3),
                          "agrees_with_detection": v.agrees_with_detection}  # fmt: skip
    return out


async def bulk(stub: pb_grpc.RouterServiceStub, images: list[bytes]) -> dict[str, Any]:
    """A bulk job of distinct images through A: which pool served each item, and its image tokens."""

    async def requests() -> Any:
        opts = pb.GenerationOptions(max_tokens=32, temperature=0.0)
        yield pb.SubmitBatchRequest(options=pb.BatchOptions(default_question="Is there roadwork?", generation=opts))
        for image in images:
            yield pb.SubmitBatchRequest(item=pb.BatchItem(image=image))

    t0 = time.perf_counter()
    job = (await stub.SubmitBatch(requests(), timeout=120)).job
    await _completed(stub, job.job_id)
    wall = time.perf_counter() - t0
    served: dict[str, int] = {}
    tokens, prompts = [], []
    async for m in stub.ListBatchResults(pb.ListBatchResultsRequest(job_id=job.job_id), timeout=60):
        r = m.result
        key = "degraded" if r.degraded else f"{r.route.pool}/{r.route.engine}"
        served[key] = served.get(key, 0) + 1
        tokens.append(r.image.image_tokens)
        prompts.append(r.usage.prompt_tokens)
    return {"items": len(images), "wall_s": round(wall, 1), "served_by": served,
            "image_tokens_p50": statistics.median(tokens) if tokens else None,
            "prompt_tokens_p50": statistics.median(prompts) if prompts else None}  # fmt: skip


async def _completed(stub: pb_grpc.RouterServiceStub, job_id: str) -> None:
    """Poll GetBatch until the job is COMPLETED."""
    while True:
        job = (await stub.GetBatch(pb.GetBatchRequest(job_id=job_id), timeout=10)).job
        if job.state == pb.BATCH_STATE_COMPLETED:
            return
        await asyncio.sleep(0.25)


async def cancel(stub: pb_grpc.RouterServiceStub, engine: str, image: bytes, after: int = 5) -> dict[str, Any]:
    """A single-shot Ask (2,000 tokens, EOS ignored) cancelled after `after` deltas: the engine's
    running count and how many tokens it generated for it."""
    port = PORTS[engine, "bf16"]
    before = await metric_sum(port, GEN_TOKENS[engine])
    opts = pb.GenerationOptions(max_tokens=2000, temperature=0.0)
    call = stub.Ask(pb.AskRequest(image=image, question="Describe the scene.", generation=opts), timeout=120)
    deltas = 0
    async for event in call:
        deltas += event.HasField("delta")
        if deltas >= after:
            call.cancel()
            break
    t0 = time.perf_counter()
    running = None
    while time.perf_counter() - t0 < 10:
        running = await metric_sum(port, RUNNING[engine])
        if running == 0:
            break
        await asyncio.sleep(0.1)
    idle_after = round(time.perf_counter() - t0, 2)
    await asyncio.sleep(1.0)
    generated = await metric_sum(port, GEN_TOKENS[engine]) - before
    return {"deltas_before_cancel": deltas, "max_tokens": 2000, "running_after": running,
            "idle_after_s": idle_after, "tokens_generated": generated}  # fmt: skip


async def per_engine(engine: str, image: bytes) -> dict[str, Any]:
    """Through C-<engine>: the answer and verdict on the sample, four 4-turn conversations, a cancel."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ROUTER_PORTS['C-' + engine]}") as channel:
        stub = pb_grpc.RouterServiceStub(channel)  # type: ignore[no-untyped-call]
        opts = pb.GenerationOptions(max_tokens=48, temperature=0.0)
        out: dict[str, Any] = {}
        # Through the multi-turn pool (a session), which stops at EOS; single-shot is the EOS-ignoring one.
        session = {"image": image, "open_session": True}
        out["answer"] = await ask(stub, question="Is there roadwork here?", generation=opts, **session)
        verdict = pb.GenerationOptions(max_tokens=160)
        out["verdict"] = await ask(
            stub, question="Give the verdict.", format=pb.ANSWER_FORMAT_VERDICT, generation=verdict, **session
        )
        firsts, follows = [], []
        cached_before = await metric_sum(PORTS[engine, "bf16"], CACHED[engine])
        for c in range(4):
            first = await ask(stub, image=image, question=f"Conversation {c}: is there roadwork here?",
                              open_session=True, generation=opts)  # fmt: skip
            firsts.append(first)
            for q in ("How many cones are there?", "Is a lane closed?", "Is work active?"):
                follows.append(await ask(stub, question=q, session_id=first["session_id"], generation=opts))
        out["follow_ups"] = {
            "pools": sorted({r["pool"] for r in firsts + follows}),
            "degraded": sum(r["degraded"] for r in firsts + follows),
            "cached_share": round(sum(r["cached"] for r in follows) / max(1, sum(r["prompt"] for r in follows)), 4),
            "engine_counted_cached_tokens": await metric_sum(PORTS[engine, "bf16"], CACHED[engine]) - cached_before,
            "prompt_tokens_total": sum(r["prompt"] for r in firsts + follows),
            "prompt_tokens_p50": statistics.median(r["prompt"] for r in follows),
            "first_ttft_p50_ms": statistics.median(r["ttft_ms"] or r["total_ms"] for r in firsts),
            "follow_up_ttft_p50_ms": statistics.median(r["ttft_ms"] or r["total_ms"] for r in follows),
            "sample_follow_up": follows[-1],
        }
        out["cancel"] = await cancel(stub, engine, image)
    return out


def scenes(n: int, seed: int, size: tuple[int, int] = (640, 480)) -> list[bytes]:
    import numpy as np

    from training.synth import render_scene

    rng, out = np.random.default_rng(seed), []
    for _ in range(n):
        buf = io.BytesIO()
        render_scene(rng, size)[0].save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


async def step_kinds(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work)
    pids = {f"C-{e}": spawn_router(f"C-{e}", per_engine_env(e), work) for e in args.engines}
    image = SAMPLE.read_bytes()
    out: dict[str, Any] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ROUTER_PORTS['A']}") as channel:
        stub = pb_grpc.RouterServiceStub(channel)  # type: ignore[no-untyped-call]
        opts = pb.GenerationOptions(max_tokens=48, temperature=0.0)
        out["A_single_shot"] = await ask(stub, image=image, question="Is there roadwork here?", generation=opts)
        first = await ask(stub, image=image, question="Is there roadwork here?", open_session=True, generation=opts)
        out["A_multi_turn"] = [first, await ask(stub, question="Is a lane closed?", session_id=first["session_id"],
                                                generation=opts)]  # fmt: skip
        out["A_bulk"] = await bulk(stub, await asyncio.to_thread(scenes, 64, 77))
    ready = await wait_routers(list(pids), 240)
    out["C_routers_serving_after_s"] = ready
    for name in pids:
        if ready[name] is not None:
            engine = name[2:]
            try:
                out[engine] = await per_engine(engine, image)
            except Exception as exc:  # one engine's failure must not hide the others' figures
                out[engine] = {"error": f"{type(exc).__name__}: {exc}"[:600]}
    for pid in pids.values():
        _term(pid)
    return out


def _term(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def gpu_memory_by_session() -> dict[int, int]:
    """MiB of GPU memory per process session (a launched server and all its worker processes)."""
    try:
        rows = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, check=False).stdout.splitlines()  # fmt: skip
    except FileNotFoundError:
        return {}
    out: dict[int, int] = {}
    for row in rows:
        pid, mib = (int(x) for x in row.split(","))
        try:
            sid = os.getsid(pid)
        except ProcessLookupError:
            continue
        out[sid] = out.get(sid, 0) + mib
    return out


def server_sid(port: int) -> int | None:
    """The session of the server process whose command line has `--port N` / `--server-port N`."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = Path(entry.path, "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        for i, arg in enumerate(argv[:-1]):
            if arg in ("--port", "--server-port") and argv[i + 1] == str(port) and "python" in argv[0]:
                try:
                    return os.getsid(int(entry.name))
                except ProcessLookupError:
                    return None
    return None


KV_LOG = re.compile(r"[GC]PU KV cache size: [\d,]+ tokens|KV Cache is allocated\. #tokens: \d+[^\n]*|"
                    r"max_total_num_tokens=\d+|num_gpu_blocks\D{0,4}\d+")  # fmt: skip


def kv_log_lines(work: Path, port: int) -> list[str]:
    """What the server's log says about its KV cache (the router writes engine logs per launch port)."""
    lines: list[str] = []
    for log in work.glob("*/engine-logs/*"):
        if str(port) in log.name:
            lines += sorted({m.group(0)[:200] for m in KV_LOG.finditer(log.read_text(errors="replace"))})
    return lines


def _data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()


async def burst(port: int, images: list[bytes], tokens: int) -> dict[str, float]:
    """len(images) concurrent streams, each its own image and `tokens` output tokens (EOS ignored)."""

    async def one(client: httpx.AsyncClient, jpeg: bytes) -> tuple[float, int]:
        body = {"model": NAME, "stream": True, "max_tokens": tokens, "temperature": 0, "ignore_eos": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": _data_url(jpeg)}},
                    {"type": "text", "text": "Describe the roadwork."}]}]}  # fmt: skip
        t0, ttft, completion = time.perf_counter(), 0.0, 0
        async with client.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions", json=body) as r:
            r.raise_for_status()
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if not ttft and chunk.get("choices"):
                    ttft = time.perf_counter() - t0
                if chunk.get("usage"):
                    completion = chunk["usage"].get("completion_tokens", completion)
        return ttft, completion

    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=256)) as client:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(client, j) for j in images))
        wall = time.perf_counter() - t0
    tokens = sum(c for _, c in results)
    ttft = statistics.median(t for t, _ in results) * 1e3
    return {"tokens_per_s": tokens / wall, "ttft_p50_ms": ttft, "completion_tokens": tokens, "wall_s": wall}


async def step_options(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work)
    pool = await asyncio.to_thread(scenes, 64 * (args.bursts + 1), 4242, (448, 448))
    memory = gpu_memory_by_session()
    out: dict[str, Any] = {"streams": 64, "tokens_each": args.tokens, "image": "448x448 (256 image tokens)"}
    for (engine, variant), port in PORTS.items():
        if engine not in args.engines:
            continue
        sid = server_sid(port)
        row: dict[str, Any] = {"port": port, "gpu_memory_mib": memory.get(sid) if sid else None,
                               "kv_log": kv_log_lines(work, port)}  # fmt: skip
        try:
            await burst(port, pool[:8], 16)  # warm: compile paths, vision encoder, grammar-free decode
            runs = [await burst(port, pool[64 * (i + 1) : 64 * (i + 2)], args.tokens) for i in range(args.bursts)]
            row["tokens_per_s_p50"] = round(statistics.median(r["tokens_per_s"] for r in runs))
            row["ttft_p50_ms"] = round(statistics.median(r["ttft_p50_ms"] for r in runs), 1)
            row["bursts"] = [{k: round(v, 2) for k, v in r.items()} for r in runs]
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"[:400]
        out[f"{engine}/{variant}"] = row
    return out


async def step_stop(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work)
    state = json.loads((work / "state.json").read_text()) if (work / "state.json").exists() else {"pids": {}}
    t0 = time.perf_counter()
    for pid in state["pids"].values():
        _term(pid)
    left: list[int] = []
    while time.perf_counter() - t0 < 60:
        left = [p for p in PORTS.values() if server_sid(p)]
        if not left:
            break
        await asyncio.sleep(1)
    for port in TINY_PORTS:
        sid = server_sid(port)
        if sid:
            os.killpg(sid, signal.SIGKILL)
    return {"stopped_in_s": round(time.perf_counter() - t0, 1), "servers_left": left}


STEPS = {"start": step_start, "kinds": step_kinds, "options": step_options, "stop": step_stop}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=tuple(STEPS))
    p.add_argument("--work", default="/root/vision")
    p.add_argument("--out", default=os.environ.get("OUT", "/tmp"))
    p.add_argument("--model", default="/root/vision/roadwork-vlm", help="the demo VLM folder")
    p.add_argument("--tiny-model", default="/root/vision/tiny-vlm", help="the 32k-context random Qwen2-VL")
    p.add_argument("--deadline-s", type=float, default=420, help="start: how long to wait for the routers")
    p.add_argument("--engines", type=lambda v: v.split(","), default=["vllm", "sglang", "lmdeploy"])
    p.add_argument("--tiny", type=int, default=2, help="start: tiny-VLM vLLM servers for bench.vision (0-2)")
    p.add_argument("--bursts", type=int, default=3)
    p.add_argument("--tokens", type=int, default=256)
    a = p.parse_args()
    Path(a.work).mkdir(parents=True, exist_ok=True)
    report = asyncio.run(STEPS[a.step](a))
    text = json.dumps(report, indent=2, default=str) + "\n"
    Path(a.work, f"{a.step}.json").write_text(text)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    Path(a.out, f"vision-engines-{a.step}.json").write_text(text)
    print(text[-6000:])


if __name__ == "__main__":
    main()
