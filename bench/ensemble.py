"""Detection ensemble: parallel wall time vs sequential vs the slowest single member, N = 1, 2, 4.

python -m bench.ensemble [--device cpu|cuda:0] [--images 30] [--imgsz 512] [--json bench/results/ensemble.json]
Members cycle through the demo weights; each config runs on the same images with the cache off.
Medians per image; ratios are parallel / slowest member (goal on the GPU: <= 1.3).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from detectors.ensemble import Ensemble
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


async def _run(n: int, images: list[Image.Image], device: str, imgsz: int) -> dict[str, float]:
    members = _members(n, device, imgsz)
    ens = Ensemble(list(members), cache_size=0, deadline_s=60)
    await ens.warmup()
    loop = asyncio.get_running_loop()
    parallel, sequential, slowest = [], [], []
    for i, img in enumerate(images):
        t = time.perf_counter()
        await ens.detect(img, b"", digest=f"p{i}")
        parallel.append(time.perf_counter() - t)
        per_member = []
        for m, w in zip(members, ens._workers, strict=True):  # each on its own worker, one after another
            t = time.perf_counter()
            await loop.run_in_executor(w, m.detect, img)
            per_member.append(time.perf_counter() - t)
        sequential.append(sum(per_member))
        slowest.append(max(per_member))
    ens.close()
    med = statistics.median
    return {
        "members": n,
        "parallel_ms": med(parallel) * 1e3,
        "sequential_ms": med(sequential) * 1e3,
        "slowest_member_ms": med(slowest) * 1e3,
        "parallel_over_slowest": med(parallel) / med(slowest),
        "parallel_over_sequential": med(parallel) / med(sequential),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--images", type=int, default=30)
    p.add_argument("--imgsz", type=int, default=512)
    p.add_argument("--members", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--json", type=Path, default=Path("bench/results/ensemble.json"))
    args = p.parse_args()
    images = _images(args.images)
    rows = [asyncio.run(_run(n, images, args.device, args.imgsz)) for n in args.members]
    device = args.device
    if device.startswith("cuda"):
        import torch

        device = torch.cuda.get_device_name()
    print(f"ensemble benchmark on {device} ({platform.node()}), imgsz {args.imgsz}, {args.images} images, medians")
    print(f"{'N':>2} {'parallel ms':>12} {'sequential ms':>14} {'slowest ms':>11} {'par/slowest':>12} {'par/seq':>8}")
    for r in rows:
        print(
            f"{r['members']:>2} {r['parallel_ms']:>12.1f} {r['sequential_ms']:>14.1f} {r['slowest_member_ms']:>11.1f}"
            f" {r['parallel_over_slowest']:>12.2f} {r['parallel_over_sequential']:>8.2f}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"device": device, "imgsz": args.imgsz, "images": args.images, "rows": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
