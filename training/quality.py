"""Image-level quality of the configured ensemble through the router's `Detect`, on both scene styles.

python -m training.quality [--n 300] [--seed 4242] [--config FILE] [--device cpu] [--json OUT]
Starts the router in-process on a free port (ROADWORK__ env overrides apply, cache off) and sends
each scene as a JPEG: --n scenes of the training style (training.synth, plain, from a seed no
training shard, calibration or evaluation uses) and --n of the held-out style (training.heldout,
never trained on), each clean and after the StreetVision validator augmentation. Roadwork is
`roadwork_probability > 0.5`, as StreetVision counts it. Prints MCC, precision, recall per cell.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from PIL import Image

from bench.detect_grpc import _serve as serve  # the quick-start router in-process, cache off
from detectors.ensemble import Ensemble
from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc
from training.evaluate import heldout_scene, mcc, synth_scene

Scene = Callable[[np.random.Generator], tuple[Image.Image, bool]]
STYLES: dict[str, Scene] = {"training style (synth)": synth_scene, "held-out style": heldout_scene}


def scenes(style: Scene, n: int, seed: int) -> dict[str, tuple[list[bytes], list[bool]]]:
    """n scenes of one style as JPEGs, clean and StreetVision-augmented (the same scenes), with their labels."""
    from training.synth import augment_streetvision

    rng = np.random.default_rng(seed)
    clean: list[bytes] = []
    aug: list[bytes] = []
    labels: list[bool] = []
    for _ in range(n):
        img, roadwork = style(rng)
        for out, im in ((clean, img), (aug, augment_streetvision(rng, img))):
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=95)
            out.append(buf.getvalue())
        labels.append(roadwork)
    return {"clean": (clean, labels), "streetvision_aug": (aug, labels)}


def metrics(probs: list[float], labels: list[bool]) -> dict[str, Any]:
    """MCC, precision, recall and accuracy of P > 0.5, and the range of P."""
    preds = [p > 0.5 for p in probs]
    tp = sum(p and y for p, y in zip(preds, labels, strict=True))
    return {
        "n": len(labels),
        "mcc": round(mcc(labels, preds), 4),
        "precision": round(tp / max(1, sum(preds)), 4),
        "recall": round(tp / max(1, sum(labels)), 4),
        "accuracy": round(sum(p == y for p, y in zip(preds, labels, strict=True)) / len(labels), 4),
        "p_min": round(min(probs), 4),
        "p_max": round(max(probs), 4),
    }


def measure(n: int, seed: int, config: str | None, device: str | None) -> dict[str, Any]:
    """The MCC table: every style x {clean, augmented}, each image through `Detect`."""
    report: dict[str, Any] = {"n_per_style": n, "seed": seed, "cells": {}}
    with tempfile.TemporaryDirectory() as tmp:
        app, loop, port = serve(config, str(Path(tmp) / "quality.sqlite3"), device, "auto")
        try:
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            stub = pb_grpc.RouterServiceStub(channel)  # type: ignore[no-untyped-call]

            def prob(data: bytes) -> float:
                reply = stub.Detect(pb.DetectRequest(image=data), timeout=120)
                return float(reply.detection.roadwork_probability)

            with ThreadPoolExecutor(4) as pool:
                for k, (style, fn) in enumerate(STYLES.items()):
                    for setting, (images, labels) in scenes(fn, n, seed + k).items():
                        report["cells"][f"{style} / {setting}"] = metrics(list(pool.map(prob, images)), labels)
            channel.close()
        finally:
            asyncio.run_coroutine_threadsafe(app.stop(0), loop).result(60)
    assert isinstance(app.ensemble, Ensemble)  # one router process: detection in it
    report["members"] = [m.name for m in app.ensemble.members]
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=300, help="scenes per style (each sent clean and augmented)")
    p.add_argument("--seed", type=int, default=4242)
    p.add_argument("--config")
    p.add_argument("--device", help="put every detector on this device (cpu, cuda, cuda:0)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    report = measure(args.n, args.seed, args.config, args.device)
    print(f"Detect, ensemble {', '.join(report['members'])}; {args.n} scenes per style, roadwork = P > 0.5")
    print(f"{'scenes':<48} {'MCC':>6} {'prec':>6} {'recall':>6} {'acc':>6} {'P range':>13}")
    for cell, m in report["cells"].items():
        rng = f"[{m['p_min']:.3f}, {m['p_max']:.3f}]"
        print(f"{cell:<48} {m['mcc']:>6.3f} {m['precision']:>6.3f} {m['recall']:>6.3f} {m['accuracy']:>6.3f} {rng:>13}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
