"""`Detect` through gRPC: images/s and latency with concurrent clients (detection cache off).

python -m bench.detect_grpc [--device cpu|cuda] [--backends predict fused] [--concurrency 1 4 16]
    [--requests 64] [--config FILE] [--json bench/results/detect_grpc.json]
Starts the quick-start router in-process on a free port (ROADWORK__ env overrides apply), once
per backend, sends distinct images so every request runs the ensemble, and reports medians and
how many images each forward pass took on average (batching across concurrent requests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

from bench._servers import scene_jpegs
from detectors.ensemble import Ensemble
from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc
from router.api.app import RouterApp
from router.config import load_config


def _serve(
    config_path: str | None, store: str, device: str | None, backend: str
) -> tuple[RouterApp, asyncio.AbstractEventLoop, int]:
    env = {k: v for k, v in os.environ.items() if k.startswith("ROADWORK__")}
    env |= {"ROADWORK__SERVER__PORT": "0", "ROADWORK__SERVER__METRICS_PORT": "0", "ROADWORK__STORAGE__PATH": store,
            "ROADWORK__DETECTION__CACHE_SIZE": "0"}  # fmt: skip
    for i in range(len(load_config(config_path, env=env).detectors)):
        env[f"ROADWORK__DETECTORS__{i}__BACKEND"] = backend
        if device:
            env[f"ROADWORK__DETECTORS__{i}__DEVICE"] = device
    app = RouterApp(load_config(config_path, env=env))
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    port = asyncio.run_coroutine_threadsafe(app.start(), loop).result(120)
    asyncio.run_coroutine_threadsafe(app.wait_ready(600), loop).result(660)
    return app, loop, port


def _measure(stub: pb_grpc.RouterServiceStub, images: list[bytes], concurrency: int) -> dict[str, float]:
    latencies: list[float] = []

    def one(data: bytes) -> None:
        t = time.perf_counter()
        stub.Detect(pb.DetectRequest(image=data), timeout=120)
        latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, images))
    wall = time.perf_counter() - start
    latencies.sort()
    return {
        "concurrency": concurrency,
        "requests": len(images),
        "images_per_s": len(images) / wall,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1e3,
    }


def _backend_rows(args: argparse.Namespace, backend: str, images: list[bytes]) -> tuple[list[dict[str, Any]], str]:
    with tempfile.TemporaryDirectory() as tmp:
        app, loop, port = _serve(args.config, str(Path(tmp) / "bench.sqlite3"), args.device, backend)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = pb_grpc.RouterServiceStub(channel)  # type: ignore[no-untyped-call]
        _measure(stub, images[:8], 2)  # warm the path
        rows = []
        assert isinstance(app.ensemble, Ensemble)  # detection.process: local (workers = 1)
        for c in args.concurrency:
            before = [(w.batches, w.items) for w in app.ensemble.workers]
            row = _measure(stub, images, c)
            after = [(w.batches, w.items) for w in app.ensemble.workers]
            batches = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
            items = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
            rows.append({"backend": backend, **row, "images_per_forward": items / max(1, batches)})
        channel.close()
        asyncio.run_coroutine_threadsafe(app.stop(0), loop).result(60)
    placed = [(m.name, getattr(getattr(m, "spec", None), "device", "?")) for m in app.ensemble.members]
    return rows, ", ".join(f"{name}@{device}" for name, device in placed)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config")
    p.add_argument("--device", help="put every detector on this device (e.g. cuda, cuda:0, cpu)")
    p.add_argument("--backends", nargs="+", default=["auto"], choices=["auto", "fused", "predict"])
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--requests", type=int, default=64)
    p.add_argument("--json", type=Path, default=Path("bench/results/detect_grpc.json"))
    args = p.parse_args()
    images = scene_jpegs(args.requests)
    rows: list[dict[str, Any]] = []
    members = ""
    for backend in args.backends:
        more, members = _backend_rows(args, backend, images)
        rows += more
    device = platform.node()
    if (args.device or "").startswith("cuda"):
        import torch

        device = torch.cuda.get_device_name()
    print(f"Detect through gRPC on {device}, cache off, {args.requests} distinct 640x480 JPEGs, ensemble: {members}")
    print(f"{'backend':>8} {'concurrency':>11} {'images/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'img/forward':>12}")
    for r in rows:
        print(
            f"{r['backend']:>8} {r['concurrency']:>11} {r['images_per_s']:>9.1f} {r['p50_ms']:>8.1f}"
            f" {r['p99_ms']:>8.1f} {r['images_per_forward']:>12.1f}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"device": device, "members": members, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
