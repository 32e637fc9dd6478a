"""The training and evaluation tools on a tiny CPU run: weights come out and load as a detector."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from detectors.ultralytics import UltralyticsDetector, UltralyticsSpec
from training.evaluate import mcc


def test_mcc_matches_definition() -> None:
    assert mcc([True, False, True, False], [True, False, True, False]) == 1.0
    assert mcc([True, False, True, False], [False, True, False, True]) == -1.0
    assert mcc([True, True], [True, True]) == 0.0  # undefined counts as 0, as StreetVision does
    assert mcc([True, True, False, False], [True, False, False, False]) == pytest.approx(0.57735, abs=1e-4)


@pytest.mark.slow
def test_train_one_epoch_on_cpu_gives_loadable_weights(tmp_path: Path) -> None:
    out = tmp_path / "tr"
    cmd = [
        sys.executable,
        "-m",
        "training.train",
        str(out),
        "--train",
        "32",
        "--val",
        "8",
        "--epochs",
        "1",
        "--imgsz",
        "160",
        "--batch",
        "8",
        "--device",
        "cpu",
        "--jobs",
        "2",
        "--models",
        "roadwork-yolov8n.yaml",
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    report = json.loads((out / "train-report.json").read_text())
    assert report["data"]["train"] == 32 and report["models"][0]["weights"] == "roadwork-yolov8n.pt"
    member = UltralyticsDetector(UltralyticsSpec(name="t", weights=str(out / "roadwork-yolov8n.pt"), imgsz=160))
    member.load()
    member.detect(Image.new("RGB", (160, 120)))  # loads and runs; names come from the checkpoint
    assert member._model.names[0] == "cone"


def test_results_csv_reader_matches_what_ultralytics_reads(tmp_path: Path) -> None:
    """The stand-in for ultralytics' polars reader (the GPU host has no polars) gives {column: values}."""
    from training.train import _results_csv

    csv = tmp_path / "results.csv"
    csv.write_text("epoch,  train/box_loss,metrics/mAP50(B)\n1,2.5,0.1\n2,2.0,0.25\n")
    assert _results_csv(csv) == {"epoch": [1.0, 2.0], "train/box_loss": [2.5, 2.0], "metrics/mAP50(B)": [0.1, 0.25]}
    assert _results_csv(tmp_path / "missing.csv") == {}
