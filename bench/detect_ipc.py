"""The shared detection process's wire, measured: length-prefixed pickle frames on asyncio streams
(detectors.wire, what the router uses) against gRPC (grpc.aio) on the same Unix socket.

python -m bench.detect_ipc [--requests 2000] [--concurrency 1 16] [--json bench/results/detect_ipc.json]

An echo server in its own process answers each request (a JPEG of the demo scenes) with a
two-member detection, as the detection process would; no model runs. Reported per transport and
concurrency: round trips/s, p50, and the calling process's CPU per round trip, which is what the
shared process exists to spare (the router processes' GIL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from bench._servers import scene_jpegs
from detectors.base import Box, Detection, EncodedJpeg, Vote, VoteStatus
from detectors.proxy import EnsembleProxy
from detectors.wire import frame, read_frame

METHOD = "/roadwork.bench.Detect/Detect"


def _reply() -> Detection:
    boxes = tuple(Box("cone", 0.9 - i / 100, (10.0 * i, 20.0, 30.0 + i, 40.0), True) for i in range(6))
    votes = tuple(Vote(f"m{k}", 1.0, VoteStatus.OK, True, 0.9, boxes, latency_ms=12.5) for k in range(2))
    return Detection(0.9, votes, "ab" * 32, 640, 480, latency_ms=25.0, notices=("demo detector",) * 2)


async def _stream_server(path: str) -> None:
    reply = _reply()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (message := await read_frame(reader)) is not None:
            rid, op, _ = message
            writer.write(frame((rid, True, (reply, {"m0": 1, "m1": 1}) if op == "detect" else {})))

    server = await asyncio.start_unix_server(serve, path)
    await server.serve_forever()


async def _grpc_server(path: str) -> None:
    import pickle

    reply = pickle.dumps((_reply(), {"m0": 1, "m1": 1}), protocol=5)

    async def detect(request: bytes, context: Any) -> bytes:
        return reply

    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "roadwork.bench.Detect", {"Detect": grpc.unary_unary_rpc_method_handler(detect)}
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"unix:{path}")
    await server.start()
    await server.wait_for_termination()


def _serve(kind: str, path: str) -> None:
    asyncio.run(_stream_server(path) if kind == "streams" else _grpc_server(path))


async def _client(kind: str, path: str, jpegs: list[bytes], requests: int, concurrency: int) -> dict[str, float]:
    import pickle

    latencies: list[float] = []
    if kind == "streams":
        proxy = EnsembleProxy(path, cache_size=0)
        await proxy.warmup(30)

        async def one(data: bytes) -> None:
            await proxy.call("detect", "x" * 64, EncodedJpeg(data, (640, 480)))

        close: Any = proxy.close
    else:
        channel = grpc.aio.insecure_channel(f"unix:{path}")
        call = channel.unary_unary(METHOD)

        async def one(data: bytes) -> None:
            pickle.loads(await call(pickle.dumps(("x" * 64, EncodedJpeg(data, (640, 480))), protocol=5)))

        await channel.channel_ready()
        close = None

    async def loop(share: list[bytes]) -> None:
        for data in share:
            t = time.perf_counter()
            await one(data)
            latencies.append(time.perf_counter() - t)

    await loop(jpegs[:50])  # warm
    latencies.clear()
    work = [jpegs[i % len(jpegs)] for i in range(requests)]
    c0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(loop(work[k::concurrency]) for k in range(concurrency)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if close is not None:
        close()
    else:
        await channel.close()
    return {
        "round_trips_per_s": requests / wall,
        "p50_us": statistics.median(latencies) * 1e6,
        "client_cpu_us_per_call": cpu / requests * 1e6,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    p.add_argument("--rounds", type=int, default=3, help="medians of this many runs each")
    p.add_argument("--json", type=Path, default=Path("bench/results/detect_ipc.json"))
    args = p.parse_args()
    jpegs = scene_jpegs(16)
    rows = []
    for kind in ("streams", "grpc"):
        path = str(Path(tempfile.mkdtemp(prefix="roadwork-ipc-")) / "s.sock")
        server = mp.get_context("spawn").Process(target=_serve, args=(kind, path), daemon=True)
        server.start()
        while not os.path.exists(path):
            time.sleep(0.05)
        for c in args.concurrency:
            runs = [asyncio.run(_client(kind, path, jpegs, args.requests, c)) for _ in range(args.rounds)]
            rows.append(
                {"transport": kind, "concurrency": c} | {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            )
        server.terminate()
        server.join(10)
    jpeg_kb = statistics.median(len(j) for j in jpegs) / 1024
    where = f"{platform.node()} ({os.cpu_count()} cores)"
    print(f"detection wire on {where}, {jpeg_kb:.0f} KB JPEGs, medians of {args.rounds}")
    print(f"{'transport':>9} {'conc':>5} {'calls/s':>9} {'p50 us':>8} {'client CPU us/call':>19}")
    for r in rows:
        print(f"{r['transport']:>9} {r['concurrency']:>5} {r['round_trips_per_s']:>9.0f} {r['p50_us']:>8.0f}"
              f" {r['client_cpu_us_per_call']:>19.0f}")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": platform.node(), "jpeg_kb": jpeg_kb, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
