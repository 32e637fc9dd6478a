"""Train the demo detectors on procedurally generated scenes (run where a GPU is; CPU works, slowly).

python -m training.train OUT --train 4000 --val 400 --epochs 25 --imgsz 512 --models roadwork-yolo11n.yaml ...
    [--randomize --augment 0.35 --min-quality 35] [--data DATA/data.yaml]
Writes OUT/<model stem>.pt (the best checkpoint) and OUT/train-report.json (data, epochs, val mAP).
--randomize turns on the generator's domain randomization, --augment gives that share of the
scenes the StreetVision validator augmentation (boxes follow), --min-quality draws each image's
JPEG quality from [that, 90]; --data trains on an existing dataset instead of generating one.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "true")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

MODELS = Path(__file__).resolve().parent.parent / "detectors" / "models"


def make_data(out: Path, n_train: int, n_val: int, jobs: int, seed: int, recipe: Any = None) -> Path:
    """Generate the dataset with `jobs` worker processes (the files are the same for any number)."""
    from training.synth import write_dataset

    return Path(write_dataset(out, n_train, n_val, seed=seed, workers=jobs, recipe=recipe))


def train(
    model_yaml: str,
    data: Path,
    out: Path,
    *,
    epochs: int,
    imgsz: int,
    batch: int,
    device: str,
    minutes: float,
    init: Path | None = None,
) -> dict[str, Any]:
    """Train one model from its yaml (random init) or fine-tune init/<stem>.pt; copy the best to OUT/<stem>.pt.

    A run that fails after saving a best checkpoint still yields it (its error is in the report)."""
    import torch
    from ultralytics import YOLO  # type: ignore[attr-defined]
    from ultralytics.utils.torch_utils import strip_optimizer

    stem = Path(model_yaml).stem
    torch.manual_seed(0)
    model = YOLO(str(init / f"{stem}.pt" if init else MODELS / model_yaml))
    start = time.time()
    error = ""
    try:
        _fit(model, data, out, stem, epochs=epochs, imgsz=imgsz, batch=batch, device=device, minutes=minutes,
             fine_tune=init is not None)  # fmt: skip
    except Exception as exc:  # a checkpoint saved before the failure is still worth keeping
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.time() - start
    best = out / "runs" / stem / "weights" / "best.pt"
    if not best.exists():
        raise RuntimeError(f"training {model_yaml} saved no checkpoint ({error or 'no error'})")
    target = out / (stem + ".pt")
    shutil.copy(best, target)
    strip_optimizer(str(target))  # a run cut short leaves the optimizer in; the shipped file must not carry it
    metrics = YOLO(str(target)).val(data=str(data), imgsz=imgsz, batch=batch, device=device, plots=False, verbose=False,
                                    project=str(out / "runs"), name="val", exist_ok=True)  # fmt: skip
    return {
        "model": model_yaml,
        "init": str(init / f"{stem}.pt") if init else "random",
        "weights": target.name,
        "epochs": epochs,
        "imgsz": imgsz,
        "batch": batch,
        "train_seconds": round(seconds, 1),
        "val_map50": round(float(metrics.box.map50), 4),
        "val_map50_95": round(float(metrics.box.map), 4),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "error": error,
    }


def _results_csv(path: Path) -> dict[str, list[Any]]:
    """results.csv as {column: values}, what ultralytics' trainer reads with polars (missing on the GPU host)."""
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, list[Any]] = {k.strip(): [] for k in (rows[0] if rows else {})}
    for row in rows:
        for k, v in row.items():
            try:
                out[k.strip()].append(float(v))
            except ValueError:
                out[k.strip()].append(v)
    return out


def _trainer() -> Any:
    """ultralytics' detection trainer, or where polars is missing one that reads results.csv with csv."""
    try:
        import polars  # noqa: F401
    except ImportError:
        from ultralytics.models.yolo.detect import DetectionTrainer

        class Trainer(DetectionTrainer):
            def read_results_csv(self) -> dict[str, list[Any]]:
                return _results_csv(Path(self.csv))

        return Trainer
    return None


def _fit(  # the last 3 epochs without mosaic when time-capped (ultralytics re-counts the epochs to fit the time)
    model: Any, data: Path, out: Path, stem: str, *, epochs: int, imgsz: int, batch: int, device: str,
    minutes: float, fine_tune: bool,
) -> None:  # fmt: skip
    trainer = _trainer()
    model.train(
        data=str(data), epochs=epochs, imgsz=imgsz, batch=batch, device=device, workers=min(12, os.cpu_count() or 2),
        project=str(out / "runs"), name=stem, exist_ok=True, pretrained=fine_tune, plots=False,
        warmup_epochs=0.5 if fine_tune else 3.0,
        verbose=False, seed=0, deterministic=False, amp=True, cache="ram", fliplr=0.5, flipud=0.2, degrees=15.0,
        close_mosaic=3 if minutes else max(1, epochs // 5), **({"time": minutes / 60} if minutes else {}),
        **({"trainer": trainer} if trainer else {}),
    )  # fmt: skip


def _data_facts(data: Path) -> dict[str, Any]:
    """What an existing dataset holds, from the meta.json training.synth wrote beside data.yaml."""
    meta_path = data.parent / "meta.json"
    if not meta_path.exists():
        return {"path": str(data)}
    meta = json.loads(meta_path.read_text())
    return {"path": str(data), "train": meta["images"]["train"], "val": meta["images"]["val"], "seed": meta["seed"],
            "recipe": {k: meta.get(k) for k in ("randomize", "augment", "jpeg_quality")}}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path)
    p.add_argument("--train", type=int, default=4000)
    p.add_argument("--val", type=int, default=400)
    p.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--imgsz", type=int, default=512)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--device", default="0")
    p.add_argument("--minutes", type=float, default=0, help="cap each model's training time (ultralytics `time`)")
    p.add_argument("--models", nargs="+", default=["roadwork-yolo11n.yaml", "roadwork-yolov8n.yaml"])
    p.add_argument("--randomize", action="store_true", help="domain randomization in the generator")
    p.add_argument("--augment", type=float, default=0.0, help="share of scenes given the StreetVision augmentation")
    p.add_argument("--min-quality", type=int, default=90, help="JPEG quality drawn per image from [this, 90]")
    p.add_argument("--data", type=Path, help="an existing data.yaml (skips generating)")
    p.add_argument("--init", type=Path, help="fine-tune DIR/<model stem>.pt (e.g. detectors/models) instead of random")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    from training.synth import Recipe

    recipe = Recipe(args.randomize, args.augment, (min(args.min_quality, 90), 90))
    if args.data:
        data = args.data.resolve()
    else:
        data = make_data(args.out / "data", args.train, args.val, args.jobs, args.seed, recipe)
    models: list[dict[str, Any]] = []
    report: dict[str, Any] = {
        "data": _data_facts(data)
        if args.data
        else {
            "train": args.train,
            "val": args.val,
            "seed": args.seed,
            "recipe": vars(recipe),
            "generate_seconds": round(time.time() - t0, 1),
        },
        "models": models,
    }
    print(json.dumps(report["data"]), flush=True)
    for m in args.models:
        kw = {"epochs": args.epochs, "imgsz": args.imgsz, "batch": args.batch, "device": args.device}
        models.append(train(m, data, args.out, minutes=args.minutes, init=args.init, **kw))
        (args.out / "train-report.json").write_text(json.dumps(report, indent=2))
        print(json.dumps(models[-1]), flush=True)


if __name__ == "__main__":
    main()
