"""The router against a real vLLM server it launches itself on the GPU host (bench/gpu/README.md).

python -m bench.gpu.engines --model /root/qwen2-rand --tokenizer /root/qwen2-rand-tok --out $OUT

Steps, each timed and written to OUT/engines.json: the router starts (launching vLLM through
`[[pools.vllm.launch]]`, detectors on the GPU) until SERVING; single-shot asks; four-turn
conversations (follow-up TTFT and cached prompt tokens, session affinity); the load and
prefix-cache figures the router scraped from vLLM's real /metrics; vLLM SIGKILLed, restarted by the
router, and answering again.
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
from engines import vllm
from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc

SAMPLE = Path(__file__).resolve().parents[2] / "router" / "assets" / "sample_roadwork.jpg"
VLLM_ENV = {"VLLM_USE_FLASHINFER_SAMPLER": "0", "NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
            "NVSHMEM_DISABLE_NVLS": "1", "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}  # fmt: skip


async def _ask(stub: pb_grpc.RouterServiceStub, **kw: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    ttft = None
    done: Any = None
    async for event in stub.Ask(pb.AskRequest(**kw), timeout=120):
        if event.HasField("delta") and ttft is None:
            ttft = (time.perf_counter() - t0) * 1e3
        if event.HasField("done"):
            done = event.done
    total = (time.perf_counter() - t0) * 1e3
    u = done.usage
    return {"ttft_ms": ttft, "total_ms": total, "prompt": u.prompt_tokens, "cached": u.cached_tokens,
            "completion": u.completion_tokens, "engine": done.route.engine, "replica": done.route.replica,
            "session_id": done.session_id, "degraded": done.degraded,
            "fallback_from": list(done.route.fallback_from)}  # fmt: skip


async def conversations(stub: pb_grpc.RouterServiceStub, image: bytes, opts: pb.GenerationOptions) -> dict[str, Any]:
    """Six four-turn conversations: TTFT of first turns and follow-ups, follow-ups' cached prompt share."""
    firsts, follow = [], []
    for c in range(6):
        first = await _ask(stub, image=image, question=f"Conversation {c}: is the zone active?",
                           open_session=True, generation=opts)  # fmt: skip
        firsts.append(first)
        for q in ("How many lanes?", "Any workers?", "Is it safe?"):
            follow.append(await _ask(stub, question=q, session_id=first["session_id"], generation=opts))
    return {
        "engines": sorted({r["engine"] for r in firsts + follow}),
        "first_ttft_p50_ms": statistics.median(r["ttft_ms"] for r in firsts),
        "follow_up_ttft_p50_ms": statistics.median(r["ttft_ms"] for r in follow),
        "follow_up_cached_share": sum(r["cached"] for r in follow) / max(1, sum(r["prompt"] for r in follow)),
        "follow_up_prompt_tokens_p50": statistics.median(r["prompt"] for r in follow),
    }


def _engine_pid(port: int) -> int | None:
    """The pid of the vLLM API server listening on `port` (the router's child)."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmd = Path(entry.path, "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if vllm.ENTRYPOINT.encode() in cmd and str(port).encode() in cmd:
                return int(entry.name)
    return None


async def main(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    port, metrics_port = 8000, free_port()
    launch = [{"model": args.model, "port": port, "python": sys.executable, "served_model_name": "qwen2-rand",
               "extra_args": ["--tokenizer", args.tokenizer, "--max-model-len", "4096",
                              "--gpu-memory-utilization", "0.6"],
               "env": VLLM_ENV, "start_timeout_s": 420}]  # fmt: skip
    env = {
        "ROADWORK__POOLS__VLLM__ENGINE": "vllm",
        "ROADWORK__POOLS__VLLM__LAUNCH": json.dumps(launch),
        "ROADWORK__POOLS__VLLM__POLICY": "session_affinity",
        "ROADWORK__POOLS__VLLM__METRICS_INTERVAL_S": "1",
        "ROADWORK__POOLS__VLLM__EXTRA_BODY": '{"ignore_eos": true}',
        "ROADWORK__ROUTING__SINGLE_SHOT": '["vllm"]',
        "ROADWORK__ROUTING__MULTI_TURN": '["vllm"]',
        "ROADWORK__ROUTING__BATCH": '["vllm"]',
        "ROADWORK__DETECTORS__0__DEVICE": "cuda",
        "ROADWORK__DETECTORS__1__DEVICE": "cuda",
        "ROADWORK__STORAGE__PATH": str(Path(args.out) / "router.sqlite3"),
    }
    t0 = time.perf_counter()
    router = await start_router(env | {"ROADWORK__SERVER__METRICS_PORT": str(metrics_port)})
    out["router_serving_after_s"] = round(time.perf_counter() - t0, 1)  # includes launching vLLM
    try:
        channel = grpc.aio.insecure_channel(router.url)
        stub = pb_grpc.RouterServiceStub(channel)  # type: ignore[no-untyped-call]
        image = SAMPLE.read_bytes()
        opts = pb.GenerationOptions(max_tokens=64, temperature=0.0)
        single = [await _ask(stub, image=image, question=f"Single question {i}", generation=opts) for i in range(20)]
        out["single_shot"] = {
            "engine": single[-1]["engine"],
            "replica": single[-1]["replica"],
            "ttft_p50_ms": statistics.median(r["ttft_ms"] for r in single[2:]),
            "total_p50_ms": statistics.median(r["total_ms"] for r in single[2:]),
            "completion_tokens": single[-1]["completion"],
        }
        out["multi_turn"] = await conversations(stub, image, opts)
        await asyncio.sleep(2.5)  # a scrape after the traffic
        async with httpx.AsyncClient(timeout=10) as client:
            text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            out["router_engine_metrics"] = [line for line in text.splitlines() if line.startswith("roadwork_engine")]
            raw = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        out["vllm_parse_load"] = vars(vllm.parse_load(raw))
        out["vllm_metric_names"] = sorted({line.split("{")[0].split(" ")[0] for line in raw.splitlines()
                                           if line.startswith("vllm:")})  # fmt: skip
        overhead = [sys.executable, "-m", "bench.overhead", "--vllm-url", f"http://127.0.0.1:{port}", "--model",
                    "qwen2-rand", "--rounds", "40", "--concurrency", "1", "16", "--cancel-trials", "10",
                    "--json", str(Path(args.out) / "overhead-h100.json")]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *overhead, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            text_out, _ = await asyncio.wait_for(proc.communicate(), 200)
            out["overhead"] = text_out.decode(errors="replace")[-2500:]
        except TimeoutError:
            proc.kill()
            out["overhead"] = "timed out after 200 s"
        pid = _engine_pid(port)
        out["killed_pid"] = pid
        if pid:
            t1 = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            recovered = None
            while time.perf_counter() - t1 < 420:
                await asyncio.sleep(2)
                try:
                    r = await _ask(stub, image=image, question="Back?", generation=opts, strict=True)
                except grpc.aio.AioRpcError:
                    continue
                if not r["degraded"]:
                    recovered = r
                    break
            out["restart"] = {"answering_again_after_s": round(time.perf_counter() - t1, 1), "ask": recovered}
            async with httpx.AsyncClient(timeout=10) as client:
                text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            out["restart"]["metrics"] = [line for line in text.splitlines() if "engine_restarts" in line]
        await channel.close()
    finally:
        t2 = time.perf_counter()
        await router.stop()
        out["router_stop_s"] = round(time.perf_counter() - t2, 1)
        out["vllm_left_running"] = _engine_pid(port) is not None
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="/root/qwen2-rand")
    p.add_argument("--tokenizer", default="/root/qwen2-rand-tok")
    p.add_argument("--out", default=os.environ.get("OUT", "/tmp"))
    a = p.parse_args()
    report = asyncio.run(main(a))
    Path(a.out, "engines.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps(report, indent=2, default=str))
