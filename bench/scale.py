"""Requests/s with N router processes on one port (`server.workers`) vs the engine reached directly.

python -m bench.scale --vllm-url URL --model NAME [--router-workers 1 2 4 8] [--clients 8]
    [--concurrency 16] [--seconds 10] [--tokens 16] [--json bench/results/scale.json]
python -m bench.scale --instant 4 ...    (an instant engine instead: the router's own ceiling)

A closed loop from --clients client processes (one Python process tops out near 110-150 streamed
requests/s, so one client would measure itself), each keeping --concurrency requests in flight,
each on its own connection (the kernel spreads connections, not requests, over the router's
processes). Every target gets the same load: first the engine directly (HTTP, the router's exact
chat request), then the router (gRPC `Ask`, detection a cache hit) with each worker count. After
--warmup-s the next --seconds count: requests/s, latency p50/p99, errors, the CPU the router's
processes used (cores, from /proc) and the client processes' own CPU (a saturated client, or
clients crowding the engine's cores, shows there). With --instant K the engine is `bench._instant`
in K processes, which answers at once: what is left is the router's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._servers import free_port, start_router, vllm_routes
from bench.overhead import QUESTION, SAMPLE, _exact_payload
from bench.proc_cpu import HZ, cpu_ticks


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    """One client process: `concurrency` loops, each on its own connection, until spec['end']."""
    import grpc
    import httpx

    from router._proto.roadwork.v1 import router_pb2 as pb
    from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc

    done: list[tuple[float, float]] = []  # (finished at, latency s)
    errors: list[str] = []
    conc, tokens = spec["concurrency"], spec["tokens"]

    async def loop(one: Any) -> None:
        while time.time() < spec["end"]:
            t0 = time.perf_counter()
            try:
                await one()
            except Exception as exc:  # counted, and the loop goes on: a benchmark reports errors
                errors.append(type(exc).__name__)
                await asyncio.sleep(0.01)
                continue
            done.append((time.time(), time.perf_counter() - t0))

    cpu: list[float] = []

    async def clock() -> None:  # this process's CPU over the measured window
        for mark in (spec["measure"], spec["end"]):
            await asyncio.sleep(max(0.0, mark - time.time()))
            cpu.append(time.process_time())

    clocked = asyncio.create_task(clock())
    await asyncio.sleep(max(0.0, spec["start"] - time.time()))  # every client process starts together
    if spec["kind"] == "grpc":
        image = SAMPLE.read_bytes()
        request = pb.AskRequest(image=image, question=QUESTION,
                                generation=pb.GenerationOptions(max_tokens=tokens, temperature=0.0))  # fmt: skip
        channels = [grpc.aio.insecure_channel(spec["addr"], options=[("grpc.use_local_subchannel_pool", 1)])
                    for _ in range(conc)]  # fmt: skip

        def grpc_one(stub: Any) -> Any:
            async def one() -> None:
                async for _ in stub.Ask(request, timeout=60):
                    pass

            return one

        await asyncio.gather(*(loop(grpc_one(pb_grpc.RouterServiceStub(c))) for c in channels))  # type: ignore[no-untyped-call]
        for c in channels:
            await c.close()
    else:
        body = json.dumps(spec["body"] | {"max_tokens": tokens}).encode()
        url = spec["url"] + "/v1/chat/completions"
        headers = {"content-type": "application/json"}
        clients = [httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=1, keepalive_expiry=2.0))
                   for _ in range(conc)]  # fmt: skip

        def http_one(client: httpx.AsyncClient) -> Any:
            async def one() -> None:
                async with client.stream("POST", url, content=body, headers=headers) as resp:
                    resp.raise_for_status()
                    async for _ in resp.aiter_bytes():
                        pass

            return one

        await asyncio.gather(*(loop(http_one(c)) for c in clients))
        for c in clients:
            await c.aclose()
    await clocked
    return {"done": [d for d in done if spec["measure"] <= d[0] <= spec["end"]], "errors": errors,
            "cpu_s": cpu[1] - cpu[0]}  # fmt: skip


def _client(spec: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_load(spec))


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far."""
    return sum(cpu[0] for pid in pids if (cpu := cpu_ticks(pid)) is not None) / HZ


def _tree(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *(int(c) for c in out)]


def _measure(args: argparse.Namespace, spec: dict[str, Any], pids: list[int]) -> dict[str, Any]:
    start = time.time() + 4.0  # client processes import grpc/httpx first
    spec = spec | {"concurrency": args.concurrency, "tokens": args.tokens, "start": start,
                   "measure": start + args.warmup_s, "end": start + args.warmup_s + args.seconds}  # fmt: skip
    with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
        pending = pool.map_async(_client, [spec] * args.clients)
        time.sleep(max(0.0, spec["measure"] - time.time()))
        cpu0 = _cpu_s(pids)
        time.sleep(max(0.0, spec["end"] - time.time()))
        cpu1 = _cpu_s(pids)
        results = pending.get(timeout=args.seconds + 120)
    lat = sorted(x[1] for r in results for x in r["done"])
    errors = [e for r in results for e in r["errors"]]
    return {
        "requests": len(lat),
        "requests_per_s": len(lat) / args.seconds,
        "p50_ms": statistics.median(lat) * 1e3 if lat else None,
        "p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1e3 if lat else None,
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "router_cores": (cpu1 - cpu0) / args.seconds if pids else None,
        "client_cores": sum(r["cpu_s"] for r in results) / args.seconds,
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir)
    instant = None
    if args.instant:
        port = free_port()
        argv = ["-m", "bench._instant", "--port", str(port), "--processes", str(args.instant)]
        argv += ["--gap-ms", str(args.gap_ms)]
        instant = await asyncio.create_subprocess_exec(sys.executable, *argv, start_new_session=True)
        url, model = f"http://127.0.0.1:{port}", "instant"
        await asyncio.sleep(2)
    else:
        url, model = args.vllm_url, args.model
    env = vllm_routes(url, model)
    rows: dict[str, Any] = {}
    try:
        body = await _exact_payload(env, args.tokens, model)
        rows["direct"] = await asyncio.to_thread(_measure, args, {"kind": "http", "url": url, "body": body}, [])
        print(f"direct: {rows['direct']['requests_per_s']:.0f} req/s", flush=True)
        for w in args.router_workers:
            store = str(workdir / f"scale-w{w}.sqlite3")
            router = await start_router(env | {"ROADWORK__SERVER__WORKERS": str(w), "ROADWORK__STORAGE__PATH": store})
            try:
                assert router.server.pid is not None
                pids = _tree(router.server.pid)
                spec = {"kind": "grpc", "addr": router.url}
                rows[f"router x{w}"] = await asyncio.to_thread(_measure, args, spec, pids) | {"workers": w}
                print(f"router x{w}: {rows[f'router x{w}']['requests_per_s']:.0f} req/s", flush=True)
            finally:
                await router.stop()
    finally:
        if instant is not None:
            os.killpg(instant.pid, signal.SIGTERM)  # its server processes too
            await instant.wait()
    for row in rows.values():
        row["vs_direct"] = row["requests_per_s"] / rows["direct"]["requests_per_s"]
    engine = f"vLLM at {url} ({model})"
    if args.instant:
        engine = f"instant engine ({args.instant} processes, {args.gap_ms:g} ms between chunks)"
    return {"engine": engine, "clients": args.clients, "concurrency_per_client": args.concurrency,
            "seconds": args.seconds, "tokens": args.tokens, "targets": rows}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--vllm-url", help="a running vLLM server")
    src.add_argument("--instant", type=int, metavar="K", help="start bench._instant in K processes instead")
    p.add_argument("--gap-ms", type=float, default=0.0, help="with --instant: pause before each streamed chunk")
    p.add_argument("--model", default="tiny", help="the vLLM server's model name")
    p.add_argument("--router-workers", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--clients", type=int, default=8, help="client processes")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight per client process")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--warmup-s", type=float, default=8.0, help="load before counting (each process detects once)")
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--workdir", default=tempfile.mkdtemp(prefix="roadwork-scale-"))
    p.add_argument("--json", type=Path, default=Path("bench/results/scale.json"))
    args = p.parse_args()
    report = asyncio.run(_run(args))
    report["machine"] = f"{platform.node()} ({os.cpu_count()} cores), python {sys.version.split()[0]}"
    print(f"\nrequests/s, {report['engine']}, {args.clients} client processes x {args.concurrency} in flight, "
          f"{args.tokens} tokens each, {args.seconds:.0f} s after {args.warmup_s:.0f} s warm-up")  # fmt: skip
    print(report["machine"])
    cols = f"{'req/s':>8} {'vs direct':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'router cores':>12}"
    cols += f" {'client cores':>12}"
    print(f"{'target':>12} {cols}")
    for name, r in report["targets"].items():
        cores = "" if r["router_cores"] is None else f"{r['router_cores']:.2f}"
        print(f"{name:>12} {r['requests_per_s']:>8.1f} {r['vs_direct']:>9.2f} {r['p50_ms'] or 0:>8.1f}"
              f" {r['p99_ms'] or 0:>8.1f} {r['errors']:>6} {cores:>12} {r['client_cores']:>12.2f}")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
