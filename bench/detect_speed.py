"""Detection at the GPU's speed (issue 16): the runner alone, `Detect` at 1 and 64 clients, and a
detect-only bulk job, side by side in one run, as ratios to the runner's best throughput.

python -m bench.detect_speed [--device cuda] [--variants default cpu-decode] [--clients 64] [--client-procs 8]
    [--requests 2048] [--bulk-items 5000] [--json bench/results/detect_speed.json]

1. The ensemble runner alone (the router's own detection stage, built from its config in this
   process): images/s at batch 1, 2, 4, 8, 16, fed decoded images and, where the runners decode
   JPEGs on their GPU, JPEG bytes. Its best figure is the denominator of every ratio.
2. Per variant, a router in its own process (`roadwork-router serve`, detection cache off):
   `Detect` from 1 client (p50) and from `--clients` clients spread over `--client-procs` client
   processes (images/s, p50, and each client process's CPU share, so no client is the bottleneck);
   then a detect-only bulk job (images/s from its acceptance to its completion).
Variants: `default` (the config as shipped), `cpu-decode` (detection.gpu_decode = false: PIL
decodes on the router's CPU), `bulk-1` (batch.detect_batch = 1: bulk items one by one), and
`workers-N` (server.workers = N; detection.process auto: shared), `local-N` and `shared-N`
(server.workers = N with detection.process local / shared), or any `ROADWORK__SECTION__KEY=VALUE`
override. `--compare-process N` runs `local-N` and `shared-N` side by side (Detect and a bulk job
each) and adds a table of shared / local ratios. Images are distinct JPEGs (scenes re-encoded with
a per-copy comment segment: same pixels, distinct bytes and digests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from bench._servers import scene_jpegs, start_router
from detectors.base import EncodedJpeg, Picture, rgb
from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc

BATCHES = (1, 2, 4, 8, 16)
VARIANTS = {
    "default": {},
    "cpu-decode": {"ROADWORK__DETECTION__GPU_DECODE": "false"},
    "bulk-1": {"ROADWORK__BATCH__DETECT_BATCH": "1"},
}


def distinct(jpegs: list[bytes], n: int) -> list[bytes]:
    """n distinct JPEGs from these: copy k carries a comment segment naming k (same pixels)."""
    out = []
    for k in range(n):
        data = jpegs[k % len(jpegs)]
        note = f"copy {k}".encode()
        out.append(data[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + data[2:])
    return out


def _env(device: str | None, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith("ROADWORK__")}
    env |= {"ROADWORK__DETECTION__CACHE_SIZE": "0", **extra}
    if device:
        for i in range(2):
            env[f"ROADWORK__DETECTORS__{i}__DEVICE"] = device
    return env


async def _runner_alone(env: dict[str, str], jpegs: list[bytes]) -> dict[str, Any]:
    """images/s of the router's own ensemble fed whole batches (decoded images; JPEG bytes)."""
    from router.config import load_config
    from router.flow.detection import build_ensemble

    ensemble = build_ensemble(load_config(env=env))
    await ensemble.warmup()
    encoded: list[Picture] = [EncodedJpeg(d, rgb(EncodedJpeg(d, (0, 0))).size) for d in jpegs]
    inputs: dict[str, list[Picture]] = {"decoded": [rgb(e) for e in encoded]}
    if ensemble.decodes_jpeg:
        inputs["jpeg"] = encoded
    rows: dict[str, dict[str, float]] = {}
    for name, pictures in inputs.items():
        rows[name] = {}
        for b in BATCHES:
            batches = [pictures[i : i + b] for i in range(0, len(pictures) - b + 1, b)]
            for f in [w.submit_batch(batches[0]) for w in ensemble.workers]:  # warm this size
                f.result()
            t = time.perf_counter()
            for batch in batches:
                for f in [w.submit_batch(batch) for w in ensemble.workers]:
                    f.result()
            rows[name][str(b)] = sum(len(x) for x in batches) / (time.perf_counter() - t)
    ensemble.close()
    best = max(v for r in rows.values() for v in r.values())
    return {"images_per_s": rows, "best_images_per_s": best, "decodes_jpeg": ensemble.decodes_jpeg}


def _client(url: str, images: list[bytes], concurrency: int, queue: Any, go: Any) -> None:
    """One client process: connects, waits for `go` (every client process starts at once), then keeps
    `concurrency` Detect calls in flight until its images are done."""

    async def run() -> tuple[list[float], float, float, float]:
        latencies: list[float] = []
        async with grpc.aio.insecure_channel(url) as channel:
            stub = pb_grpc.RouterServiceStub(channel)  # type: ignore[no-untyped-call]
            await stub.Detect(pb.DetectRequest(image=images[0]), timeout=60)  # connect first
            queue.put(("ready",))
            await asyncio.to_thread(go.wait, 120)
            it = iter(images)

            async def loop() -> None:
                for data in it:
                    t = time.perf_counter()
                    await stub.Detect(pb.DetectRequest(image=data), timeout=120)
                    latencies.append(time.perf_counter() - t)

            t0, c0 = time.monotonic(), time.process_time()
            await asyncio.gather(*(loop() for _ in range(concurrency)))
            return latencies, time.process_time() - c0, time.monotonic() - t0, time.monotonic()

    queue.put(("done", *asyncio.run(run())))


def _detect(url: str, images: list[bytes], clients: int, procs: int) -> dict[str, Any]:
    """Detect from `clients` concurrent calls spread over `procs` processes, all started together:
    images/s (from the start to the last answer), p50, the busiest client process's CPU share."""
    procs = max(1, min(procs, clients))
    ctx = mp.get_context("spawn")
    queue, go = ctx.Queue(), ctx.Event()
    share = [images[i::procs] for i in range(procs)]
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    workers = [ctx.Process(target=_client, args=(url, s, c, queue, go)) for s, c in zip(share, per, strict=True)]
    for w in workers:
        w.start()
    ready = [queue.get(timeout=300) for _ in range(procs)]
    assert all(r[0] == "ready" for r in ready), ready
    start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the host
    go.set()
    done = [queue.get(timeout=600) for _ in range(procs)]
    for w in workers:
        w.join(30)
    assert all(r[0] == "done" for r in done), done
    latencies = sorted(x for r in done for x in r[1])
    wall = max(r[4] for r in done) - start
    return {
        "clients": clients,
        "client_procs": procs,
        "requests": len(latencies),
        "images_per_s": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1e3,
        "busiest_client_cpu_share": max(r[2] / r[3] for r in done),
        "wall_s": wall,
    }


async def _bulk(url: str, images: list[bytes]) -> dict[str, Any]:
    """A detect-only job of these images: items/s from its acceptance to its completion."""
    async with grpc.aio.insecure_channel(url, options=[("grpc.max_send_message_length", 1 << 26)]) as channel:
        stub = pb_grpc.RouterServiceStub(channel)  # type: ignore[no-untyped-call]

        async def messages() -> Any:
            yield pb.SubmitBatchRequest(options=pb.BatchOptions(detect_only=True))
            for data in images:
                yield pb.SubmitBatchRequest(item=pb.BatchItem(image=data))

        t0 = time.perf_counter()
        job = (await stub.SubmitBatch(messages(), timeout=600)).job
        accepted = time.perf_counter()
        while True:
            view = (await stub.GetBatch(pb.GetBatchRequest(job_id=job.job_id), timeout=60)).job
            if view.state in (pb.BATCH_STATE_COMPLETED, pb.BATCH_STATE_CANCELED):
                break
            await asyncio.sleep(0.05)
        done = time.perf_counter()
    return {
        "items": len(images),
        "succeeded": view.succeeded,
        "failed": view.failed,
        "upload_s": accepted - t0,
        "run_s": done - accepted,
        "items_per_s": len(images) / (done - accepted),
    }


def _detection_pid(router_pid: int) -> int | None:
    """The shared detection process's pid (the child of the orphan guard the router started), if any."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout.splitlines()
    rows = [line.split(None, 2) for line in out[1:] if len(line.split(None, 2)) == 3]
    guards = {r[0] for r in rows if r[1] == str(router_pid) and "router.flow.detection_process" in r[2]}
    return next((int(r[0]) for r in rows if r[1] in guards and "router.flow.detection_process" in r[2]), None)


async def _variant(name: str, env: dict[str, str], args: argparse.Namespace, images: list[bytes],
                   bulk: list[bytes], workdir: Path) -> dict[str, Any]:  # fmt: skip
    router = await start_router(env | {"ROADWORK__STORAGE__PATH": str(workdir / f"{name}.sqlite3")})
    try:
        single = await asyncio.to_thread(_detect, router.url, images[: args.single_requests], 1, 1)
        loaded = asyncio.ensure_future(asyncio.to_thread(_detect, router.url, images, args.clients, args.client_procs))
        if args.profile and name in args.profile_variants:  # once the client processes have started
            await asyncio.sleep(args.profile_delay)
            assert router.server.pid is not None
            targets = {"": router.server.pid} | ({"-detection": d} if (d := _detection_pid(router.server.pid)) else {})
            argv = [args.py_spy, "record", "-d", str(args.profile), "-f", "raw", "-r", "200", "--nonblocking", "--gil"]
            spies = [  # the router process, and the shared detection process where there is one
                await asyncio.create_subprocess_exec(
                    *argv, "-p", str(pid), "-o", str(args.profile_dir / f"profile-{name}{suffix}.txt")
                )
                for suffix, pid in targets.items()
            ]
            for spy in spies:
                await spy.wait()
        many = await loaded
        job = await _bulk(router.url, bulk) if bulk and name in args.bulk_variants else {}
    finally:
        await router.stop()
    return {"variant": name, "detect_1": single, "detect_many": many, "bulk": job}


def _overrides(name: str) -> dict[str, str]:
    """A variant's ROADWORK__ overrides, from its name."""
    if name in VARIANTS:
        return VARIANTS[name]
    if "=" in name:  # any override, e.g. ROADWORK__BATCH__WORKERS=8
        return dict([name.split("=", 1)])
    kind, _, n = name.rpartition("-")
    extra = {"ROADWORK__SERVER__WORKERS": n}
    if kind in ("local", "shared"):
        extra["ROADWORK__DETECTION__PROCESS"] = kind
    elif kind != "workers":
        raise SystemExit(f"unknown variant {name!r}")
    return extra


def _median_row(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A variant's figures over its rounds: each number the median of the rounds'; the rounds kept."""
    row: dict[str, Any] = {"variant": name, "rounds": runs}
    for part in ("detect_1", "detect_many", "bulk"):
        keys = runs[0][part].keys()
        row[part] = {k: statistics.median(r[part][k] for r in runs) for k in keys}
    return row


def _process_ratios(rows: list[dict[str, Any]], n: int) -> dict[str, float]:
    """shared-N against local-N: images/s, p50 and bulk items/s, each shared / local."""
    by = {r["variant"]: r for r in rows}
    local, shared = by[f"local-{n}"], by[f"shared-{n}"]
    out = {
        "detect_many_images_per_s": shared["detect_many"]["images_per_s"] / local["detect_many"]["images_per_s"],
        "detect_many_p50": shared["detect_many"]["p50_ms"] / local["detect_many"]["p50_ms"],
        "detect_1_p50": shared["detect_1"]["p50_ms"] / local["detect_1"]["p50_ms"],
    }
    if local["bulk"] and shared["bulk"]:
        out["bulk_items_per_s"] = shared["bulk"]["items_per_s"] / local["bulk"]["items_per_s"]
    return out


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    base = scene_jpegs(args.scenes)
    images = distinct(base, args.requests)
    bulk = distinct(base, args.bulk_items)[::-1]
    runner = await _runner_alone(_env(args.device, {}), distinct(base, args.runner_images))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.variants}
        for _ in range(args.rounds):  # the variants in turn, round after round: drift hits them alike
            for name in args.variants:
                env = _env(args.device, _overrides(name))
                runs[name].append(await _variant(name, env, args, images, bulk, Path(tmp)))
        rows = [_median_row(name, r) for name, r in runs.items()]
    best = runner["best_images_per_s"]
    for r in rows:
        r["detect_many_vs_runner"] = r["detect_many"]["images_per_s"] / best
        r["bulk_vs_runner"] = r["bulk"]["items_per_s"] / best if r["bulk"] else None
    report: dict[str, Any] = {"runner": runner, "variants": rows}
    if args.compare_process:
        report["shared_vs_local"] = _process_ratios(rows, args.compare_process)
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", help="put every detector on this device (cuda, cpu); default: the config's")
    p.add_argument("--variants", nargs="+", default=["default", "cpu-decode"])
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--client-procs", type=int, default=8)
    p.add_argument("--requests", type=int, default=2048)
    p.add_argument("--single-requests", type=int, default=200)
    p.add_argument("--bulk-items", type=int, default=5000)
    p.add_argument("--scenes", type=int, default=256, help="distinct scenes drawn (copies fill the rest)")
    p.add_argument("--runner-images", type=int, default=256)
    p.add_argument("--profile", type=int, default=0, help="py-spy the router this many seconds at many clients")
    p.add_argument("--profile-delay", type=float, default=3.0, help="seconds after the clients start")
    p.add_argument("--profile-variants", nargs="+", default=["default"])
    p.add_argument("--bulk-variants", nargs="+", default=["default", "cpu-decode", "bulk-1"])
    p.add_argument("--py-spy", default="py-spy", help="the py-spy executable")
    p.add_argument("--profile-dir", type=Path, default=Path("bench/results"))
    p.add_argument("--rounds", type=int, default=1, help="run every variant this many times; medians reported")
    p.add_argument(
        "--compare-process",
        type=int,
        metavar="N",
        default=0,
        help="run local-N and shared-N (server.workers = N, detection.process local / shared) instead",
    )
    p.add_argument("--json", type=Path, default=Path("bench/results/detect_speed.json"))
    args = p.parse_args()
    if args.compare_process:
        args.variants = args.bulk_variants = [f"local-{args.compare_process}", f"shared-{args.compare_process}"]
    report = asyncio.run(_main(args))
    device = platform.node()
    if (args.device or "cuda").startswith("cuda"):
        import torch

        device = torch.cuda.get_device_name() if torch.cuda.is_available() else device
    report |= {"device": device, "cores": os.cpu_count(), "args": {k: str(v) for k, v in vars(args).items()}}
    run = report["runner"]
    print(f"detection speed on {device}, {os.cpu_count()} cores; runner alone, images/s by batch size:")
    for name, by in run["images_per_s"].items():
        print(f"  {name:>8}: " + "  ".join(f"b{b} {v:7.1f}" for b, v in by.items()))
    print(f"  best: {run['best_images_per_s']:.1f} images/s")
    print(f"{'variant':>12} {'1c p50 ms':>9} {'Nc img/s':>9} {'Nc p50':>7} {'client cpu':>10} {'xrunner':>7}"
          f" {'bulk it/s':>9} {'xrunner':>7}")  # fmt: skip
    for r in report["variants"]:
        one, many, job = r["detect_1"], r["detect_many"], r["bulk"]
        print(f"{r['variant']:>12} {one['p50_ms']:>9.2f} {many['images_per_s']:>9.1f} {many['p50_ms']:>7.1f}"
              f" {many['busiest_client_cpu_share']:>10.2f} {r['detect_many_vs_runner']:>7.2f}"
              f" {job.get('items_per_s', 0):>9.1f} {r['bulk_vs_runner'] or 0:>7.2f}")  # fmt: skip
    if ratios := report.get("shared_vs_local"):
        print(f"shared / local at server.workers = {args.compare_process}: "
              + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
