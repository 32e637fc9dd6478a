"""Train the image-level roadwork classifier (detectors/classifier.py) on training.synth scenes, on one CPU core.

python -m training.classifier OUT.pt [--scenes 6000] [--val 400] [--imgsz 128] [--steps 2500] [--batch 64]
    [--lr 0.002] [--seed 0] [--minutes 20] [--plain 0.2] [--cache DIR] [--report REPORT.json]

Each training scene index (training.synth with its domain randomization; a --plain share without it) gives
two images: a scene as a JPEG of random quality and another after the StreetVision validator augmentation
(boxes moved with it). The network scores every 16-pixel cell; the loss is each cell's (does a roadwork box
cover it) plus the image's (its best cell: is any roadwork visible). Batches add flips and colour jitter.
The validation split is training-style scenes from another split of the seed (never training.heldout);
the checkpoint kept is the one with the best validation MCC. The run is deterministic from --seed for a
given number of steps; --minutes stops it early (the report says so).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from detectors.classifier import WIDTHS, build_net, cell_logits, logits, pixels_to_tensor, save
from training.evaluate import mcc

CELL = 16  # pixels of the input per cell of the network's last feature map


def _cells(labels: list[tuple[int, float, float, float, float]], grid: int) -> np.ndarray[Any, Any]:
    """A grid x grid target: 1 where a roadwork object's box (normalised YOLO labels) covers the cell."""
    out = np.zeros((grid, grid), np.float32)
    for _cls, xc, yc, w, h in labels:
        x0, x1 = int((xc - w / 2) * grid), min(grid - 1, int((xc + w / 2) * grid))
        y0, y1 = int((yc - h / 2) * grid), min(grid - 1, int((yc + h / 2) * grid))
        out[max(0, y0) : y1 + 1, max(0, x0) : x1 + 1] = 1.0
    return out


def _scene(seed: int, split: int, i: int, size: int, plain: float) -> list[tuple[Any, Any, bool]]:
    """Two images at size x size with their cell targets and labels: a scene as a JPEG of random quality,
    and another after the StreetVision augmentation (its boxes moved with it)."""
    from training.synth import render_scene, render_scene_augmented

    rng = np.random.default_rng([seed, split, i])
    img, labels, _roadwork = render_scene(rng, randomize=bool(rng.random() >= plain))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(rng.integers(35, 96)))
    clean = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    aug, aug_labels, _ = render_scene_augmented(rng, randomize=bool(rng.random() >= plain))
    grid = size // CELL
    return [
        (np.asarray(im.resize((size, size), Image.Resampling.BILINEAR)), _cells(lab, grid), bool(lab))
        for im, lab in ((clean, labels), (aug, aug_labels))
    ]


def make_split(seed: int, split: int, n: int, size: int, plain: float, cache: Path | None) -> tuple[Any, Any, Any]:
    """n scenes of one split as (2n, S, S, 3) uint8 pixels, (2n, S/16, S/16) cell targets and (2n,) labels
    (roadwork visible: an augmented crop can cut every object out); reused from `cache` when there."""
    key = hashlib.sha256(f"cells/{seed}/{split}/{n}/{size}/{plain}".encode()).hexdigest()[:16]
    path = cache / f"classifier-data-{key}.npz" if cache else None
    if path is not None and path.exists():
        with np.load(path) as data:
            return data["x"], data["cells"], data["y"]
    rows = [r for i in range(n) for r in _scene(seed, split, i, size, plain)]
    x = np.stack([r[0] for r in rows])
    cells = np.stack([r[1] for r in rows])
    y = np.array([r[2] for r in rows], np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=x, cells=cells, y=y)
    return x, cells, y


def flipped(batch: Any, flip: Any) -> Any:
    """The batch with the images (N, ..., W) where `flip` is set mirrored left to right."""
    import torch

    return torch.where(flip.view(-1, *([1] * (batch.dim() - 1))), batch.flip(-1), batch)


def jitter(batch: Any, gen: Any) -> Any:
    """Random brightness, contrast and saturation changes on a preprocessed batch."""
    import torch

    n = batch.shape[0]

    def u(lo: float, hi: float) -> Any:
        return lo + (hi - lo) * torch.rand(n, 1, 1, 1, generator=gen)

    grey = batch.mean(dim=1, keepdim=True)
    batch = grey + (batch - grey) * u(0.6, 1.4)
    mean = batch.mean(dim=(1, 2, 3), keepdim=True)
    return (mean + (batch - mean) * u(0.7, 1.3)) + u(-0.6, 0.6)


def evaluate(net: Any, x: Any, y: Any) -> dict[str, float]:
    """Validation loss and MCC of P > 0.5 on uint8 pixels and labels."""
    import torch

    net.eval()
    with torch.inference_mode():
        chunks = [pixels_to_tensor(torch.from_numpy(x[i : i + 256])) for i in range(0, len(x), 256)]
        out = torch.cat([logits(net, c) for c in chunks])
    net.train()
    labels = torch.from_numpy(y)
    loss = float(torch.nn.functional.binary_cross_entropy_with_logits(out, labels))
    preds = (out > 0).tolist()
    return {"loss": round(loss, 4), "mcc": round(mcc([bool(v) for v in y], preds), 4)}


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the data, train, keep the best checkpoint by validation MCC; returns the report."""
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    x, cells, y = make_split(args.seed, 0, args.scenes, args.imgsz, args.plain, args.cache)
    vx, _, vy = make_split(args.seed, 1, args.val, args.imgsz, args.plain, args.cache)
    data_s = time.perf_counter() - t0
    xt, ct, yt = torch.from_numpy(x), torch.from_numpy(cells), torch.from_numpy(y)
    net = build_net(WIDTHS)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=5e-4)
    warm = max(1, args.steps // 30)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps)))
    )
    best: dict[str, Any] = {"mcc": -2.0, "loss": math.inf}
    history: list[dict[str, Any]] = []
    t1 = time.perf_counter()
    step = 0
    while step < args.steps:
        idx = torch.randint(len(xt), (args.batch,), generator=gen)
        flip = torch.rand(args.batch, generator=gen) < 0.5
        batch = jitter(flipped(pixels_to_tensor(xt[idx]), flip), gen)
        cl = cell_logits(net, batch)
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        loss = bce(cl, flipped(ct[idx], flip)) + bce(cl.flatten(1).amax(dim=1), yt[idx])
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        sched.step()
        step += 1
        if step % args.eval_every == 0 or step == args.steps:
            val = evaluate(net, vx, vy) | {"step": step, "train_loss": round(loss.item(), 4)}
            history.append(val)
            print(json.dumps(val), flush=True)
            if (val["mcc"], -val["loss"]) > (best["mcc"], -best["loss"]):
                best = val | {"state": {k: v.clone() for k, v in net.state_dict().items()}}
                save(str(args.out), net, args.imgsz, WIDTHS, {"step": step, "partial": True})  # kept if cut off
        if args.minutes and time.perf_counter() - t1 >= args.minutes * 60:
            break
    if "state" not in best:  # stopped before the first evaluation
        best = evaluate(net, vx, vy) | {"step": step, "state": net.state_dict()}
    net.load_state_dict(best.pop("state"))
    report = {
        "command": "python -m training.classifier " + " ".join(args.argv),
        "seed": args.seed, "scenes": args.scenes, "val_scenes": args.val, "plain_share": args.plain,
        "imgsz": args.imgsz, "widths": list(WIDTHS), "batch": args.batch, "lr": args.lr, "steps_planned": args.steps,
        "steps_done": step, "stopped_by_minutes": step < args.steps, "threads": args.threads,
        "data_seconds": round(data_s, 1), "train_seconds": round(time.perf_counter() - t1, 1),
        "parameters": sum(p.numel() for p in net.parameters()), "best": best, "history": history,
    }  # fmt: skip
    save(str(args.out), net, args.imgsz, WIDTHS, {k: v for k, v in report.items() if k != "history"})
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="the weights file to write (e.g. detectors/models/roadwork-cnn.pt)")
    p.add_argument("--scenes", type=int, default=6000, help="training scenes (two images each)")
    p.add_argument("--val", type=int, default=400, help="validation scenes (training style, another split)")
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plain", type=float, default=0.2, help="share of scenes without domain randomization")
    p.add_argument("--minutes", type=float, default=0, help="stop training after this long (0: run every step)")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--cache", type=Path, help="keep the generated scenes here for later runs")
    p.add_argument("--report", type=Path, help="also write the report here (JSON)")
    args = p.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    report = train(args)
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    best = report["best"]
    print(f"wrote {args.out}: step {best['step']} of {report['steps_done']}, validation MCC {best['mcc']:.3f} "
          f"(data {report['data_seconds']} s, training {report['train_seconds']} s)")  # fmt: skip
    return report


if __name__ == "__main__":
    main()
