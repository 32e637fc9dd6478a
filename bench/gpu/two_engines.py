"""The router launching real SGLang 0.5.14 and LMDeploy 0.18 on one GPU (bench/gpu/README.md).

python -m bench.gpu.two_engines --out $OUT

One router process (`roadwork-router serve`) launches both servers through `[[pools.*.launch]]`
(memory shared on one card) with detectors on the GPU. Steps, each written to OUT/two_engines.json:
each request kind reaches its engine (single-shot and multi-turn: SGLang; bulk: LMDeploy);
multi-turn affinity and SGLang's cached tokens; a 400-item bulk job and LMDeploy's load while it
runs; both adapters' parsers on the real /metrics; SGLang SIGKILLed: traffic moves to LMDeploy (its
fallback), the breakers open, the router restarts SGLang and traffic returns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import httpx

from bench._servers import free_port, start_router
from bench.gpu.engines import SAMPLE, _ask, conversations
from engines import lmdeploy, sglang
from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc

NO_NVLS = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}  # fmt: skip
SG_PORT, LM_PORT = 30000, 23333


def _pgid_of(needle: str) -> int | None:
    """The process group of the server whose command line contains `needle` (the router's child)."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmd = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if needle.encode() in cmd and b"python" in cmd:
                try:
                    return os.getpgid(int(entry.name))
                except ProcessLookupError:
                    continue
    return None


async def _raw_metrics(port: int) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.get(f"http://127.0.0.1:{port}/metrics")).text


def _names(text: str, prefix: str) -> list[str]:
    return sorted({line.split("{")[0].split(" ")[0] for line in text.splitlines() if line.startswith(prefix)})


async def _status(stub: pb_grpc.RouterServiceStub) -> dict[str, Any]:
    s = await stub.GetStatus(pb.GetStatusRequest(), timeout=10)
    return {p.name: {"breaker": pb.BreakerState.Name(p.breaker),
                     "replicas": [(r.name, r.healthy, pb.BreakerState.Name(r.breaker)) for r in p.replicas]}
            for p in s.pools}  # fmt: skip


async def _bulk(stub: pb_grpc.RouterServiceStub, items: int, tokens: int) -> dict[str, Any]:
    """A bulk job of `items` distinct questions on the sample image; LMDeploy's load sampled meanwhile."""
    image = SAMPLE.read_bytes()

    async def requests() -> Any:
        opts = pb.GenerationOptions(max_tokens=tokens, temperature=0.0)
        yield pb.SubmitBatchRequest(options=pb.BatchOptions(default_question="Roadwork?", generation=opts))
        for i in range(items):
            yield pb.SubmitBatchRequest(item=pb.BatchItem(image=image, question=f"Item {i}: is the lane closed?"))

    t0 = time.perf_counter()
    job = (await stub.SubmitBatch(requests(), timeout=120)).job
    peaks: dict[str, float] = {}
    while True:
        load = lmdeploy.parse_load(await _raw_metrics(LM_PORT))
        for k in ("running", "waiting", "kv_cache_usage"):
            v = getattr(load, k)
            if v is not None:
                peaks[k] = max(peaks.get(k, 0.0), v)
        view = (await stub.GetBatch(pb.GetBatchRequest(job_id=job.job_id), timeout=10)).job
        if view.state == pb.BATCH_STATE_COMPLETED:
            break
        await asyncio.sleep(0.25)
    wall = time.perf_counter() - t0
    pools: dict[str, int] = {}
    async for m in stub.ListBatchResults(pb.ListBatchResultsRequest(job_id=job.job_id), timeout=60):
        key = f"{m.result.route.pool}/{m.result.route.engine}" if not m.result.degraded else "degraded"
        pools[key] = pools.get(key, 0) + 1
    return {"items": items, "tokens_each": tokens, "succeeded": view.succeeded, "failed": view.failed,
            "wall_s": round(wall, 1), "items_per_s": round(items / wall, 1), "served_by": pools,
            "lmdeploy_peaks": peaks}  # fmt: skip


async def main(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    common = {"python": sys.executable, "served_model_name": "qwen2-rand", "start_timeout_s": 420}
    sg_launch = [{**common, "model": args.sglang_model, "port": SG_PORT,
                  "extra_args": ["--tokenizer-path", args.sglang_tokenizer, "--attention-backend", "triton",
                                 "--sampling-backend", "pytorch", "--context-length", "4096",
                                 "--mem-fraction-static", "0.35"],
                  "env": {**NO_NVLS, "PYTHONPATH": "/root/site"}}]  # fmt: skip
    lm_launch = [{**common, "model": args.lmdeploy_model, "port": LM_PORT,
                  "extra_args": ["--session-len", "4096", "--cache-max-entry-count", "0.3"],
                  "env": {**NO_NVLS, "PYTHONPATH": "/root/lmsite"}}]  # fmt: skip
    env = {
        "ROADWORK__POOLS__SGLANG__ENGINE": "sglang",
        "ROADWORK__POOLS__SGLANG__LAUNCH": json.dumps(sg_launch),
        "ROADWORK__POOLS__SGLANG__POLICY": "session_affinity",
        "ROADWORK__POOLS__SGLANG__METRICS_INTERVAL_S": "1",
        "ROADWORK__POOLS__LMDEPLOY__ENGINE": "lmdeploy",
        "ROADWORK__POOLS__LMDEPLOY__LAUNCH": json.dumps(lm_launch),
        "ROADWORK__POOLS__LMDEPLOY__METRICS_INTERVAL_S": "1",
        # No vLLM in this run: its pool points at LMDeploy's server (it is last in every order).
        "ROADWORK__POOLS__VLLM__ENGINE": "openai_http",
        "ROADWORK__POOLS__VLLM__REPLICAS": json.dumps([f"http://127.0.0.1:{LM_PORT}"]),
        "ROADWORK__ROUTING__SINGLE_SHOT": '["sglang", "lmdeploy"]',
        "ROADWORK__ROUTING__MULTI_TURN": '["sglang", "lmdeploy"]',
        "ROADWORK__ROUTING__BATCH": '["lmdeploy", "sglang"]',
        "ROADWORK__BATCH__WORKERS": "64",
        "ROADWORK__POOLS__LMDEPLOY__MAX_IN_FLIGHT": "128",
        "ROADWORK__BREAKER__COOLDOWN_S": "5",
        "ROADWORK__DETECTORS__0__DEVICE": "cuda",
        "ROADWORK__DETECTORS__1__DEVICE": "cuda",
        "ROADWORK__STORAGE__PATH": str(Path(args.out) / "router.sqlite3"),
    }
    for pool in ("SGLANG", "LMDEPLOY", "VLLM"):
        env[f"ROADWORK__POOLS__{pool}__EXTRA_BODY"] = '{"ignore_eos": true}'
    metrics_port = free_port()
    t0 = time.perf_counter()
    router = await start_router(env | {"ROADWORK__SERVER__METRICS_PORT": str(metrics_port)})
    out["router_serving_after_s"] = round(time.perf_counter() - t0, 1)  # both servers launched and warm
    try:
        channel = grpc.aio.insecure_channel(router.url)
        stub = pb_grpc.RouterServiceStub(channel)  # type: ignore[no-untyped-call]
        image = SAMPLE.read_bytes()
        opts = pb.GenerationOptions(max_tokens=64, temperature=0.0)
        single = [await _ask(stub, image=image, question=f"Single question {i}", generation=opts) for i in range(12)]
        out["single_shot"] = {"engines": sorted({r["engine"] for r in single}),
                              "ttft_p50_ms": statistics.median(r["ttft_ms"] for r in single[2:]),
                              "total_p50_ms": statistics.median(r["total_ms"] for r in single[2:])}  # fmt: skip
        out["multi_turn"] = await conversations(stub, image, opts)
        out["bulk"] = await _bulk(stub, args.items, 64)
        sg_raw, lm_raw = await _raw_metrics(SG_PORT), await _raw_metrics(LM_PORT)
        out["sglang_parse_load"] = vars(sglang.parse_load(sg_raw))
        out["lmdeploy_parse_load"] = vars(lmdeploy.parse_load(lm_raw))
        out["sglang_metric_names"] = _names(sg_raw, "sglang:")
        out["lmdeploy_metric_names"] = _names(lm_raw, "lmdeploy:")
        async with httpx.AsyncClient(timeout=10) as client:
            text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        out["router_engine_metrics"] = [line for line in text.splitlines() if line.startswith("roadwork_engine_load")]

        # SGLang crashes: its whole process group SIGKILLed.
        pgid = _pgid_of("sglang.launch_server")
        out["kill"] = {"sglang_pgid": pgid}
        if pgid:
            os.killpg(pgid, signal.SIGKILL)
            t1 = time.perf_counter()
            during = []
            for i in range(10):
                try:
                    r = await _ask(stub, image=image, question=f"During the outage {i}", generation=opts, strict=True)
                    at = round(time.perf_counter() - t1, 2)
                    ms = {"ttft_ms": round(r["ttft_ms"] or 0, 1), "total_ms": round(r["total_ms"], 1)}
                    during.append({"at_s": at, "engine": r["engine"], "fallback_from": r["fallback_from"], **ms})
                except grpc.aio.AioRpcError as exc:
                    during.append({"at_s": round(time.perf_counter() - t1, 2), "error": exc.code().name,
                                   "details": (exc.details() or "")[:200]})  # fmt: skip
            out["kill"]["asks_after_kill"] = during
            out["kill"]["status_after"] = await _status(stub)
            back = None
            while time.perf_counter() - t1 < 360:
                await asyncio.sleep(3)
                try:
                    r = await _ask(stub, image=image, question="Back yet?", generation=opts, strict=True)
                except grpc.aio.AioRpcError:
                    continue
                if r["engine"] == "sglang":
                    back = round(time.perf_counter() - t1, 1)
                    break
            out["kill"]["sglang_serving_again_after_s"] = back
            out["kill"]["status_end"] = await _status(stub)
            async with httpx.AsyncClient(timeout=10) as client:
                text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            out["kill"]["router_metrics"] = [
                line for line in text.splitlines()
                if line.startswith(("roadwork_breaker_transitions_total", "roadwork_engine_restarts_total",
                                    "roadwork_fallbacks_total", "roadwork_retries_total"))
            ]  # fmt: skip
        await channel.close()
    finally:
        t2 = time.perf_counter()
        await router.stop()
        out["router_stop_s"] = round(time.perf_counter() - t2, 1)
        out["servers_left_running"] = [n for n in ("sglang.launch_server", "lmdeploy serve api_server") if _pgid_of(n)]
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sglang-model", default="/root/qwen2-rand")
    p.add_argument("--sglang-tokenizer", default="/root/qwen2-rand-tok")
    p.add_argument("--lmdeploy-model", default="/root/llama-rand")
    p.add_argument("--items", type=int, default=400)
    p.add_argument("--out", default=os.environ.get("OUT", "/tmp"))
    a = p.parse_args()
    report = asyncio.run(main(a))
    Path(a.out, "two_engines.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps(report, indent=2, default=str))
