"""Fit the ensemble's calibration (detectors/calibration.py) on labelled validation scenes.

python -m training.calibrate [--config router/config/default.toml] [--n 800] [--seed 2718] [--no-randomize]
    [--out detectors/models/calibration.json] [--report docs/calibration-report.json]

It renders --n scenes of the training generator (with its domain randomization unless
--no-randomize; never the held-out style) from a seed no training shard or evaluation uses, scores each clean and
after the StreetVision validator augmentation (so 2n images), runs them through the configured
ensemble exactly as the router does, fits the calibration on the first half of the scenes and
reports Brier score, log loss, ECE and MCC on the held-out second half, before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from detectors.calibration import IDENTITY, Calibration, fit, reliability
from training.evaluate import mcc


async def _scores(config_path: Path | None, images: list[Any]) -> tuple[list[float], tuple[str, ...]]:
    from router.config import load_config
    from router.flow.detection import build_ensemble

    config = load_config(config_path)
    config = config.model_copy(update={"detection": config.detection.model_copy(update={"calibration": ""})})
    ensemble = build_ensemble(config)
    try:
        await ensemble.warmup()
        out = []
        for i, image in enumerate(images):
            d = await ensemble.detect(image, b"", digest=f"calibration-{i}")
            out.append(d.raw_score)
        return out, tuple(d.name for d in config.detectors)
    finally:
        ensemble.close()


def _metrics(cal: Calibration, scores: list[float], labels: list[bool]) -> dict[str, Any]:
    probs = [cal(s) for s in scores]
    return reliability(probs, labels) | {"mcc": round(mcc(labels, [p > 0.5 for p in probs]), 4)}


def calibrate(config: Path | None, n: int, seed: int, randomize: bool = True) -> tuple[Calibration, dict[str, Any]]:
    from training.synth import augment_streetvision, render_scene

    rng = np.random.default_rng(seed)
    images, labels, augmented = [], [], []
    for _ in range(n):
        image, _boxes, roadwork = render_scene(rng, randomize=randomize)
        images += [image, augment_streetvision(rng, image)]
        labels += [roadwork, roadwork]
        augmented += [False, True]
    start = time.perf_counter()
    scores, members = asyncio.run(_scores(config, images))
    half = 2 * (n // 2)  # by scene: a scene's clean and augmented images stay on one side
    cal = fit(scores[:half], labels[:half], members)
    test = slice(half, None)
    report: dict[str, Any] = {
        "command": f"python -m training.calibrate --n {n} --seed {seed}" + ("" if randomize else " --no-randomize"),
        "scenes": n,
        "seed": seed,
        "images_fit": half,
        "images_test": len(scores) - half,
        "roadwork_fraction": round(sum(labels) / len(labels), 4),
        "detection_seconds": round(time.perf_counter() - start, 1),
        "test_uncalibrated": _metrics(IDENTITY, scores[test], labels[test]),
        "test_calibrated": _metrics(cal, scores[test], labels[test]),
    }
    for name, flag in (("clean", False), ("streetvision_aug", True)):
        idx = [i for i in range(half, len(scores)) if augmented[i] == flag]
        report[f"test_{name}"] = _metrics(cal, [scores[i] for i in idx], [labels[i] for i in idx])
    report["curves"] = {"no": vars(cal.no), "yes": vars(cal.yes)}
    return Calibration(no=cal.no, yes=cal.yes, members=members, report=report), report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=None, help="router config (default: the embedded default)")
    p.add_argument("--n", type=int, default=800, help="validation scenes (each scored clean and augmented)")
    p.add_argument("--seed", type=int, default=2718)
    p.add_argument("--out", type=Path, default=Path("detectors/models/calibration.json"))
    p.add_argument("--report", type=Path, default=None, help="also write the report here")
    p.add_argument("--randomize", action=argparse.BooleanOptionalAction, default=True,
                   help="scenes with the training generator's domain randomization (default on)")  # fmt: skip
    args = p.parse_args()
    cal, report = calibrate(args.config, args.n, args.seed, args.randomize)
    cal.save(args.out)
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    before, after = report["test_uncalibrated"], report["test_calibrated"]
    print(f"held-out images: {report['images_test']} (fit on {report['images_fit']})")
    for key in ("brier", "log_loss", "ece", "mcc"):
        print(f"  {key:9s} uncalibrated {before[key]:.4f}  calibrated {after[key]:.4f}")
    clean, aug = report["test_clean"]["mcc"], report["test_streetvision_aug"]["mcc"]
    print(f"  MCC clean {clean:.3f}, StreetVision-augmented {aug:.3f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
