"""Other member kinds through predict(): ONNX weights (onnxruntime) and RT-DETR, next to a YOLO .pt."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from detectors.base import VoteStatus
from detectors.ensemble import Ensemble
from detectors.ultralytics import UltralyticsDetector, UltralyticsSpec, resolve_weights

SAMPLE = Path(__file__).resolve().parents[2] / "router" / "assets" / "sample_roadwork.jpg"
EVIDENCE = ("cone", "drum", "barricade", "barrier", "vertical_panel", "arrow_board", "work_sign")


@pytest.fixture(scope="module")
def sample() -> tuple[Image.Image, bytes]:
    data = SAMPLE.read_bytes()
    return Image.open(io.BytesIO(data)).convert("RGB"), data


@pytest.fixture(scope="module")
def onnx_weights(tmp_path_factory: pytest.TempPathFactory) -> str:
    from ultralytics import YOLO  # type: ignore[attr-defined]

    pt = tmp_path_factory.mktemp("onnx") / "roadwork-yolo11n.pt"
    shutil.copy(resolve_weights("roadwork-yolo11n.pt"), pt)
    return str(YOLO(str(pt)).export(format="onnx", imgsz=512, dynamic=False, simplify=False))


async def test_onnx_member_votes_like_its_pytorch_original(
    onnx_weights: str, sample: tuple[Image.Image, bytes]
) -> None:
    pt = UltralyticsDetector(
        UltralyticsSpec(name="pt", weights="roadwork-yolo11n.pt", imgsz=512, evidence_classes=EVIDENCE)
    )
    onnx = UltralyticsDetector(UltralyticsSpec(name="onnx", weights=onnx_weights, imgsz=512, evidence_classes=EVIDENCE))
    ens = Ensemble.solo([pt, onnx], cache_size=0)
    try:
        await ens.warmup()
        d = await ens.detect(*sample)
        by = {v.detector: v for v in d.votes}
        assert by["onnx"].status is VoteStatus.OK and by["onnx"].roadwork and by["pt"].roadwork
        assert by["onnx"].confidence == pytest.approx(by["pt"].confidence, abs=0.02)
        assert {b.class_name for b in by["onnx"].boxes} == {b.class_name for b in by["pt"].boxes}
        assert d.roadwork and d.yes_share == 1.0
    finally:
        ens.close()


async def test_rtdetr_member_runs_in_the_ensemble(sample: tuple[Image.Image, bytes]) -> None:
    import ultralytics

    cfg = Path(ultralytics.__file__).parent / "cfg" / "models" / "rt-detr" / "rtdetr-l.yaml"
    detr = UltralyticsDetector(UltralyticsSpec(name="detr", kind="rtdetr", weights=str(cfg), imgsz=160, conf=0.0001))
    yolo = UltralyticsDetector(
        UltralyticsSpec(name="yolo", weights="roadwork-yolo11n.pt", imgsz=512, evidence_classes=EVIDENCE)
    )
    ens = Ensemble.solo([yolo, detr], cache_size=0)
    try:
        d = await ens.detect(*sample)
        detr_vote = next(v for v in d.votes if v.detector == "detr")
        assert detr_vote.status is VoteStatus.OK and detr_vote.boxes  # random weights: low-confidence boxes
        assert all(0 <= b.xyxy[0] <= b.xyxy[2] <= 640 and 0 <= b.xyxy[1] <= b.xyxy[3] <= 480 for b in detr_vote.boxes)
        assert any("untrained" in n for n in d.notices)  # a .yaml member says its votes mean nothing
    finally:
        ens.close()
