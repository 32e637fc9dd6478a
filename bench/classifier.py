"""The image-classifier member's cost per image beside the YOLO members', on the same images.

python -m bench.classifier [--weights roadwork-cnn.pt] [--device cpu] [--images 32] [--threads 1]
    [--json bench/results/classifier.json]

Each member runs its own `detect_batch` (the YOLO members ultralytics predict() at imgsz 512, as the
default config does on a CPU) at batch 1 and batch 16. Per image: the median wall time and the
process CPU time, and each member's ratio to the classifier.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from detectors.base import Detector
from detectors.classifier import ClassifierSpec, ImageClassifier
from detectors.ultralytics import UltralyticsDetector, UltralyticsSpec


def _images(n: int, seed: int = 7) -> list[Image.Image]:
    from training.synth import render_scene

    rng = np.random.default_rng(seed)
    return [render_scene(rng)[0] for _ in range(n)]


def _time(member: Detector, images: list[Image.Image], batch: int, rounds: int) -> dict[str, float]:
    """Median wall ms and CPU ms per image over `rounds` passes of the images in batches."""
    member.detect_batch(images[:batch])  # warm-up
    wall, cpu = [], []
    for _ in range(rounds):
        for i in range(0, len(images) - batch + 1, batch):
            w, c = time.perf_counter(), time.process_time()
            member.detect_batch(images[i : i + batch])
            wall.append((time.perf_counter() - w) * 1e3 / batch)
            cpu.append((time.process_time() - c) * 1e3 / batch)
    return {"wall_ms": statistics.median(wall), "cpu_ms": statistics.median(cpu)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="roadwork-cnn.pt", help="the classifier's weights")
    p.add_argument("--device", default="cpu")
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    images = _images(args.images)
    members: dict[str, Detector] = {
        "classifier": ImageClassifier(ClassifierSpec(name="cnn", weights=args.weights, device=args.device)),
        **{
            w: UltralyticsDetector(UltralyticsSpec(name=w, weights=w, device=args.device, imgsz=512))
            for w in ("roadwork-yolo11n.pt", "roadwork-yolov8n.pt")
        },
    }
    rows: list[dict[str, Any]] = []
    for name, member in members.items():
        member.load()
        for batch in (1, 16):
            rows.append({"member": name, "batch": batch} | _time(member, images, batch, args.rounds))
    base = {r["batch"]: r["wall_ms"] for r in rows if r["member"] == "classifier"}
    print(f"per image, {len(images)} scenes of 640x480, device {args.device}, torch threads {torch.get_num_threads()}")
    print(f"{'member':<22} {'batch':>5} {'wall ms':>8} {'CPU ms':>8} {'x classifier':>13}")
    for r in rows:
        r["ratio_to_classifier"] = round(r["wall_ms"] / base[r["batch"]], 2)
        ratio = r["ratio_to_classifier"]
        print(f"{r['member']:<22} {r['batch']:>5} {r['wall_ms']:>8.2f} {r['cpu_ms']:>8.2f} {ratio:>12.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"device": args.device, "threads": torch.get_num_threads(), "images": len(images),
                  "machine": platform.processor() or platform.machine(), "rows": rows}  # fmt: skip
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
