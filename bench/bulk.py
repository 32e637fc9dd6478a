"""A bulk job through the router vs a direct saturating client, and an interactive client meanwhile.

python -m bench.bulk [--items 1000] [--workers 16] [--busy-shares off 0.25] [--json bench/results/bulk.json]

One vLLM (CPU, tiny model). First the interactive client's idle latency (single-shot `Ask`s, one
every 0.25 s). Then a direct client sends --items requests with --workers in flight (the router's
exact prompt, 16 tokens); then the same number of items as one `SubmitBatch` job through the
router (`batch.workers` = --workers), while the interactive client keeps asking. Reports the job's
throughput over the direct client's (issue 4's goal: >= 0.9) and the interactive p50 during the
job over idle (goal: <= 1.5x). Items share one image, so detection is a cache hit after the first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx

from bench._servers import Process, default_vllm_python, start_router, vllm_routes, vllm_server
from bench.overhead import QUESTION, SAMPLE, _exact_payload, _http_target
from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc

TOKENS = 16


async def _interactive(stub: pb_grpc.RouterServiceStub, image: bytes, stop: asyncio.Event) -> list[float]:
    out = []
    opts = pb.GenerationOptions(max_tokens=TOKENS, temperature=0.0)
    while not stop.is_set():
        t0 = time.perf_counter()
        async for _ in stub.Ask(pb.AskRequest(image=image, question=QUESTION, generation=opts), timeout=120):
            pass
        out.append((time.perf_counter() - t0) * 1e3)
        await asyncio.sleep(0.25)
    return out


async def _idle(stub: pb_grpc.RouterServiceStub, image: bytes, seconds: float) -> list[float]:
    stop = asyncio.Event()
    task = asyncio.create_task(_interactive(stub, image, stop))
    await asyncio.sleep(seconds)
    stop.set()
    return await task


async def _direct(client: httpx.AsyncClient, url: str, body: dict[str, Any], items: int, workers: int) -> float:
    request = _http_target(client, url, body)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(items):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            queue.get_nowait()
            await request(TOKENS, 0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return items / (time.perf_counter() - t0)


async def _job(stub: pb_grpc.RouterServiceStub, image: bytes, items: int) -> float:
    async def requests() -> AsyncIterator[pb.SubmitBatchRequest]:
        opts = pb.BatchOptions(default_question=QUESTION, display_name="bench",
                               generation=pb.GenerationOptions(max_tokens=TOKENS, temperature=0.0))  # fmt: skip
        yield pb.SubmitBatchRequest(options=opts)
        for _ in range(items):
            yield pb.SubmitBatchRequest(item=pb.BatchItem(image=image))

    t0 = time.perf_counter()
    job = (await stub.SubmitBatch(requests(), timeout=600)).job
    while True:
        state = (await stub.GetBatch(pb.GetBatchRequest(job_id=job.job_id), timeout=30)).job
        if state.pending == 0:
            break
        await asyncio.sleep(0.2)
    if state.succeeded != items:
        raise SystemExit(f"job ended with {state.succeeded} of {items} succeeded ({state.failed} failed)")
    return items / (time.perf_counter() - t0)


async def _run(args: argparse.Namespace, priority: bool, busy_share: float | str | None) -> dict[str, Any]:
    procs: list[Process] = []
    workdir = Path(args.workdir) / f"{'priority' if priority else 'fcfs'}-{busy_share}"
    try:
        # A server given by --vllm-url must itself run --scheduling-policy priority for the "priority" mode.
        extra = ("--scheduling-policy", "priority") if priority else ()
        vllm_url, vllm = await vllm_server(args.vllm_url, args.vllm_python, workdir, extra)
        procs += [vllm] if vllm else []
        env = vllm_routes(vllm_url, args.model) | {
            "ROADWORK__BATCH__WORKERS": str(args.workers),
            "ROADWORK__BATCH__POLL_S": "0.05",
            "ROADWORK__POOLS__VLLM__PRIORITY_SCHEDULING": "true" if priority else "false",
            # Bulk may hold `workers` slots (half of max_in_flight), as many as the direct client's.
            "ROADWORK__POOLS__VLLM__MAX_IN_FLIGHT": str(2 * args.workers),
            "ROADWORK__POOLS__VLLM__BATCH_SHARE_BUSY": (
                "null" if busy_share is None else busy_share if isinstance(busy_share, str) else str(busy_share / 2)
            ),
        }
        router = await start_router(env | {"ROADWORK__STORAGE__PATH": str(workdir / "bulk.sqlite3")})
        procs.append(router)
        body = await _exact_payload(env, TOKENS, args.model)
        image = SAMPLE.read_bytes()
        limits = httpx.Limits(keepalive_expiry=2.0)  # under uvicorn's 5 s keep-alive timeout (bench.overhead)
        client = httpx.AsyncClient(timeout=120, limits=limits)
        async with client, grpc.aio.insecure_channel(router.url) as channel:
            stub = pb_grpc.RouterServiceStub(channel)  # type: ignore[no-untyped-call]
            idle = await _idle(stub, image, 8.0)
            direct = await _direct(client, vllm_url, body, args.items, args.workers)
            stop = asyncio.Event()
            interactive = asyncio.create_task(_interactive(stub, image, stop))
            routed = await _job(stub, image, args.items)
            stop.set()
            busy = await interactive
    finally:
        for p in reversed(procs):
            await p.stop()
    return {
        "vllm_scheduling": "priority (interactive 0, bulk 1)" if priority else "fcfs",
        "bulk_window": args.workers,
        "bulk_window_busy": (
            args.workers
            if busy_share is None
            else busy_share
            if isinstance(busy_share, str)
            else max(1, int(args.workers * busy_share))
        ),
        "server": args.vllm_url or "vLLM CPU, tiny model",
        "items": args.items,
        "workers": args.workers,
        "direct_items_per_s": direct,
        "router_job_items_per_s": routed,
        "throughput_ratio": routed / direct,
        "interactive_idle_p50_ms": statistics.median(idle),
        "interactive_during_job_p50_ms": statistics.median(busy),
        "interactive_during_job_max_ms": max(busy),
        "interactive_ratio": statistics.median(busy) / statistics.median(idle),
        "interactive_samples": [len(idle), len(busy)],
    }


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    shares = [None if s == "off" else s if s == "auto" else float(s) for s in args.busy_shares]
    return {"runs": [await _run(args, mode == "priority", share) for mode in args.modes for share in shares]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vllm-python", default=default_vllm_python())
    p.add_argument("--vllm-url", help="use this running vLLM server instead of starting one")
    p.add_argument("--model", default="tiny", help="its served model name (with --vllm-url)")
    p.add_argument("--items", type=int, default=1000)
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--modes", nargs="+", default=["fcfs", "priority"], choices=["fcfs", "priority"],
                   help="vLLM scheduling: first come first served, or by the router's request priority")  # fmt: skip
    p.add_argument("--busy-shares", nargs="+", default=["off"],
                   help="bulk window while interactive requests are present, as a share of --workers "
                        "(pools.<name>.batch_share_busy); 'off' keeps it whole, 'auto' sizes it by AIMD")  # fmt: skip
    p.add_argument("--workdir", default=tempfile.mkdtemp(prefix="roadwork-bulk-"))
    p.add_argument("--json", type=Path, default=Path("bench/results/bulk.json"))
    args = p.parse_args()
    report = asyncio.run(_main(args))
    for r in report["runs"]:
        print(f"bulk: {r['items']} items, {r['workers']} in flight ({r['bulk_window_busy']} while interactive), "
              f"one vLLM ({r['server']}, {r['vllm_scheduling']})")  # fmt: skip
        print(f"  direct client       {r['direct_items_per_s']:7.1f} items/s")
        job, ratio = r["router_job_items_per_s"], r["throughput_ratio"]
        print(f"  router bulk job     {job:7.1f} items/s  ratio {ratio:.2f} (goal >= 0.9)")
        idle, busy = r["interactive_idle_p50_ms"], r["interactive_during_job_p50_ms"]
        print(f"  interactive p50     idle {idle:.1f} ms, during the job {busy:.1f} ms"
              f"  ratio {r['interactive_ratio']:.2f} (goal <= 1.5)")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
