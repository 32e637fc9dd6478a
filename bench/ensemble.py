"""Detection ensemble: parallel wall time vs sequential vs the slowest single member, N = 1, 2, 4.

python -m bench.ensemble [--device cpu|cuda:0] [--images 30] [--imgsz 512] [--json bench/results/ensemble.json]

Two backends side by side on the same images (cache off, medians per image):
  fused    the router's default for YOLO members: all members of a device as one step
           (detectors/fused.py; CUDA graphs + fp16 on a GPU)
  predict  one worker thread per member calling ultralytics predict() (the previous design)
A member alone runs on the same backend, so `par/slowest` (goal on the GPU: <= 1.3) compares
like with like. Then throughput: images/s of the N-member ensemble fed batches of 1 and 16.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from detectors.base import Picture, Runner
from detectors.ensemble import Ensemble, Solo
from detectors.fused import FusedRunner
from detectors.ultralytics import UltralyticsDetector, UltralyticsSpec

WEIGHTS = ("roadwork-yolo11n.pt", "roadwork-yolov8n.pt")


def _images(n: int, seed: int = 7) -> list[Image.Image]:
    from training.synth import render_scene

    rng = np.random.default_rng(seed)
    return [render_scene(rng)[0] for _ in range(n)]


def _members(n: int, device: str, imgsz: int) -> list[UltralyticsDetector]:
    return [
        UltralyticsDetector(UltralyticsSpec(name=f"m{i}", weights=WEIGHTS[i % 2], device=device, imgsz=imgsz))
        for i in range(n)
    ]


def _runners(backend: str, members: list[UltralyticsDetector], device: str) -> list[Runner]:
    if backend == "fused":
        return [FusedRunner(members, device)]
    return [Solo(m) for m in members]


async def _per_image(ens: Ensemble, images: list[Image.Image], tag: str) -> list[float]:
    out = []
    for i, img in enumerate(images):
        t = time.perf_counter()
        await ens.detect(img, b"", digest=f"{tag}{i}")
        out.append(time.perf_counter() - t)
    return out


async def _latency(backend: str, n: int, images: list[Image.Image], device: str, imgsz: int) -> dict[str, Any]:
    members = _members(n, device, imgsz)
    ens = Ensemble(_runners(backend, members, device), cache_size=0, deadline_s=120)
    alone = [Ensemble(_runners(backend, [m], device), cache_size=0, deadline_s=120) for m in _members(n, device, imgsz)]
    for e in (ens, *alone):
        await e.warmup()
    parallel, sequential, slowest = [], [], []
    for i, img in enumerate(images):  # interleaved image by image, so drift hits all alike
        parallel += await _per_image(ens, [img], f"p{i}-")
        each = [(await _per_image(a, [img], f"s{i}-{k}-"))[0] for k, a in enumerate(alone)]
        sequential.append(sum(each))
        slowest.append(max(each))
    throughput = {f"images_per_s_batch{b}": _throughput(ens, images, b) for b in (1, 16)}
    for e in (ens, *alone):
        e.close()
    med = statistics.median
    return {
        "backend": backend,
        "members": n,
        "parallel_ms": med(parallel) * 1e3,
        "sequential_ms": med(sequential) * 1e3,
        "slowest_member_ms": med(slowest) * 1e3,
        "parallel_over_slowest": med(parallel) / med(slowest),
        "parallel_over_sequential": med(parallel) / med(sequential),
        **throughput,
    }


def _throughput(ens: Ensemble, images: Sequence[Picture], batch: int) -> float:
    """Images/s when each runner's worker is handed `batch` images at once (all members vote on each)."""
    run: list[Callable[[list[Picture]], Any]] = [w.submit_batch for w in ens.workers]
    batches = [list(images[i : i + batch]) for i in range(0, len(images) - batch + 1, batch)] or [list(images)]
    for b in batches[:1]:  # warm this batch size
        for f in [r(b) for r in run]:
            f.result()
    t = time.perf_counter()
    for b in batches:
        for f in [r(b) for r in run]:
            f.result()
    return sum(len(b) for b in batches) / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--images", type=int, default=30)
    p.add_argument("--imgsz", type=int, default=512)
    p.add_argument("--members", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--backends", nargs="+", default=["fused", "predict"], choices=["fused", "predict"])
    p.add_argument("--json", type=Path, default=Path("bench/results/ensemble.json"))
    args = p.parse_args()
    images = _images(max(args.images, 32))
    rows = [
        asyncio.run(_latency(b, n, images[: args.images], args.device, args.imgsz))
        for n in args.members
        for b in args.backends
    ]
    device = args.device
    if device.startswith("cuda"):
        import torch

        device = torch.cuda.get_device_name()
    print(f"ensemble benchmark on {device} ({platform.node()}), imgsz {args.imgsz}, {args.images} images, medians")
    head = f"{'backend':>8} {'N':>2} {'parallel ms':>12} {'sequential ms':>14} {'slowest ms':>11} {'par/slowest':>12}"
    print(head + f" {'par/seq':>8} {'img/s b1':>9} {'img/s b16':>10}")
    for r in rows:
        print(
            f"{r['backend']:>8} {r['members']:>2} {r['parallel_ms']:>12.1f} {r['sequential_ms']:>14.1f}"
            f" {r['slowest_member_ms']:>11.1f} {r['parallel_over_slowest']:>12.2f}"
            f" {r['parallel_over_sequential']:>8.2f} {r['images_per_s_batch1']:>9.1f}"
            f" {r['images_per_s_batch16']:>10.1f}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {"device": device, "imgsz": args.imgsz, "images": args.images, "rows": rows}
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
