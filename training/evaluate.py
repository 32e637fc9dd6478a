"""Image-level evaluation of detectors as StreetVision scores them: roadwork yes/no, MCC and accuracy.

python -m training.evaluate WEIGHTS [WEIGHTS ...] --n 400 --seed 12345 [--style STYLE] [--device cpu] [--json OUT]
Scenes (--style synth: training.synth; synth-randomized: with its domain randomization; heldout:
training.heldout, never trained on) come from a seed no training shard uses; each image is scored clean and after the
StreetVision validator augmentation (224x224 crops, rotation, flips, noise, blur, JPEG).
A detector's score for an image is its highest confidence on an evidence class (0 when none).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

os.environ.setdefault("YOLO_OFFLINE", "true")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

EVIDENCE = ("cone", "drum", "barricade", "barrier", "vertical_panel", "arrow_board", "work_sign")


def synth_scene(rng: np.random.Generator) -> tuple[Image.Image, bool]:
    """A plain training-style scene (training.synth, no domain randomization)."""
    from training.synth import render_scene

    img, _labels, roadwork = render_scene(rng)
    return img, roadwork


def randomized_scene(rng: np.random.Generator) -> tuple[Image.Image, bool]:
    """A training-generator scene with its domain randomization (what the detectors are fitted on)."""
    from training.synth import render_scene

    img, _labels, roadwork = render_scene(rng, randomize=True)
    return img, roadwork


def heldout_scene(rng: np.random.Generator) -> tuple[Image.Image, bool]:
    """A held-out-style scene (training.heldout)."""
    from training.heldout import render

    return render(rng)


STYLES: dict[str, Callable[[np.random.Generator], tuple[Image.Image, bool]]] = {
    "synth": synth_scene,
    "synth-randomized": randomized_scene,
    "heldout": heldout_scene,
}


def mcc(labels: list[bool], preds: list[bool]) -> float:
    """Matthews correlation coefficient (0 when undefined, as StreetVision counts it)."""
    tp = sum(1 for y, p in zip(labels, preds, strict=True) if y and p)
    tn = sum(1 for y, p in zip(labels, preds, strict=True) if not y and not p)
    fp = sum(1 for y, p in zip(labels, preds, strict=True) if not y and p)
    fn = sum(1 for y, p in zip(labels, preds, strict=True) if y and not p)
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denom if denom else 0.0


def scores(weights: str, images: list[Any], *, imgsz: int, device: str, conf: float) -> list[float]:
    """Each image's evidence score under one detector."""
    from ultralytics import YOLO  # type: ignore[attr-defined]

    model: Any = YOLO(weights)
    out = []
    for i in range(0, len(images), 16):
        results: list[Any] = model.predict(images[i : i + 16], imgsz=imgsz, device=device, conf=conf, verbose=False)
        for r in results:
            names = r.names
            best = 0.0
            if r.boxes is not None:
                for c, k in zip(r.boxes.conf.tolist(), r.boxes.cls.tolist(), strict=True):
                    if names[int(k)] in EVIDENCE:
                        best = max(best, float(c))
            out.append(best)
    return out


def evaluate(
    weights: list[str], n: int, seed: int, *, imgsz: int, device: str, threshold: float, style: str = "synth"
) -> dict[str, Any]:
    from training.synth import augment_streetvision

    rng = np.random.default_rng(seed)
    clean, augmented, labels = [], [], []
    for _ in range(n):
        image, roadwork = STYLES[style](rng)
        clean.append(image)
        augmented.append(augment_streetvision(rng, image))
        labels.append(roadwork)
    report: dict[str, Any] = {"n": n, "seed": seed, "style": style, "threshold": threshold, "imgsz": imgsz,
                              "detectors": {}}  # fmt: skip
    for w in weights:
        entry = {}
        for name, images in (("clean", clean), ("streetvision_aug", augmented)):
            s = scores(w, images, imgsz=imgsz, device=device, conf=0.05)
            preds = [x > threshold for x in s]
            entry[name] = {
                "mcc": round(mcc(labels, preds), 4),
                "accuracy": round(sum(p == y for p, y in zip(preds, labels, strict=True)) / n, 4),
                "scores": [round(x, 4) for x in s],
            }
        report["detectors"][Path(w).name] = entry
    report["labels"] = labels
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("weights", nargs="+")
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--imgsz", type=int, default=512)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--style", choices=sorted(STYLES), default="synth")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    kw = {"imgsz": args.imgsz, "device": args.device, "threshold": args.threshold, "style": args.style}
    report = evaluate(args.weights, args.n, args.seed, **kw)
    for w, entry in report["detectors"].items():
        print(
            f"{w}: clean MCC {entry['clean']['mcc']:.3f} acc {entry['clean']['accuracy']:.3f} | "
            f"StreetVision-augmented MCC {entry['streetvision_aug']['mcc']:.3f} "
            f"acc {entry['streetvision_aug']['accuracy']:.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
