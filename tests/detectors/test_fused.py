"""FusedRunner on real ultralytics models: the same detections as predict(), batched, failures isolated."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detectors.base import DetectorOutput, EncodedJpeg, UndecodableImage
from detectors.ensemble import Ensemble
from detectors.fused import FusedRunner
from detectors.ultralytics import UltralyticsDetector, UltralyticsSpec

EVIDENCE = ("cone", "drum", "barricade", "barrier", "vertical_panel", "arrow_board", "work_sign")
SAMPLE = Path(__file__).resolve().parents[2] / "router" / "assets" / "sample_roadwork.jpg"
DEVICE = os.environ.get("ROADWORK_TEST_DEVICE", "cpu")  # bench/gpu/detect.sh runs these on cuda:0 too


def _spec(name: str, weights: str, imgsz: int = 512) -> UltralyticsSpec:
    return UltralyticsSpec(name=name, weights=weights, imgsz=imgsz, evidence_classes=EVIDENCE, device=DEVICE)


@pytest.fixture(scope="module")
def scenes() -> list[Image.Image]:
    from training.synth import render_scene

    rng = np.random.default_rng(99)
    sample = Image.open(SAMPLE).convert("RGB")
    return [sample, *(render_scene(rng)[0] for _ in range(5)), sample.resize((300, 500))]


def _pair() -> list[UltralyticsDetector]:
    """The two demo members, at different input sizes."""
    return [
        UltralyticsDetector(_spec("y11", "roadwork-yolo11n.pt")),
        UltralyticsDetector(_spec("y8", "roadwork-yolov8n.pt", 416)),
    ]


@pytest.fixture(scope="module")
def runner() -> FusedRunner:
    r = FusedRunner(_pair(), DEVICE)
    r.load()
    return r


def _ok(out: DetectorOutput | Exception) -> DetectorOutput:
    assert isinstance(out, DetectorOutput), out
    return out


def test_matches_predict_boxes_and_evidence(runner: FusedRunner, scenes: list[Image.Image]) -> None:
    reference = _pair()
    fused = runner.run(scenes)
    for k, ref in enumerate(reference):
        for image, row in zip(scenes, fused, strict=True):
            want, got = ref.detect(image), _ok(row[k])
            assert got.evidence == pytest.approx(want.evidence, abs=0.03)
            strong = [b for b in want.boxes if b.confidence > 0.5]
            for b in strong:  # every confident predict() box has a fused twin of its class, within 8 px
                twins = [g for g in got.boxes if g.class_name == b.class_name]
                assert twins and min(max(abs(p - q) for p, q in zip(g.xyxy, b.xyxy, strict=True)) for g in twins) < 8
            w, h = image.size
            assert all(0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h for x1, y1, x2, y2 in (g.xyxy for g in got.boxes))


def test_batched_equals_one_by_one(runner: FusedRunner, scenes: list[Image.Image]) -> None:
    batch = runner.run(scenes)
    for image, row in zip(scenes, batch, strict=True):
        alone = runner.run([image])[0]
        for a, b in zip(alone, row, strict=True):
            assert _ok(b).evidence == pytest.approx(_ok(a).evidence, abs=0.02)
            assert {x.class_name for x in _ok(a).boxes if x.confidence > 0.5} <= {x.class_name for x in _ok(b).boxes}


def test_a_member_that_fails_to_load_is_reported_and_the_rest_run(scenes: list[Image.Image]) -> None:
    bad = UltralyticsDetector(_spec("bad", "missing.pt"))
    r = FusedRunner([bad, UltralyticsDetector(_spec("y11", "roadwork-yolo11n.pt"))], DEVICE)
    r.load()
    row = r.run(scenes[:1])[0]
    assert isinstance(row[0], FileNotFoundError) and "missing.pt" in str(row[0])
    assert _ok(row[1]).evidence > 0.5  # the sample shows roadwork


async def test_concurrent_requests_share_batches(scenes: list[Image.Image]) -> None:
    import asyncio

    member = UltralyticsDetector(_spec("y11", "roadwork-yolo11n.pt", 320))
    ens = Ensemble([FusedRunner([member], DEVICE)], cache_size=0, max_batch=8, batch_wait_s=0.05)
    try:
        await ens.warmup()
        worker = ens.workers[0]
        before = worker.batches, worker.items
        results = await asyncio.gather(*(ens.detect(img, b"", digest=f"d{i}") for i, img in enumerate(scenes)))
        batches, items = worker.batches - before[0], worker.items - before[1]
        assert items == len(scenes) and batches < len(scenes)  # several requests per forward pass
        assert results[0].roadwork and [r.votes[0].detector for r in results] == ["y11"] * len(scenes)
    finally:
        ens.close()


def _jpeg(image: Image.Image) -> EncodedJpeg:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=95)
    return EncodedJpeg(buf.getvalue(), image.size)


def test_jpegs_left_undecoded_detect_like_their_pixels(runner: FusedRunner, scenes: list[Image.Image]) -> None:
    """On a GPU the runner decodes them with nvjpeg in one call; on a CPU with PIL: the same boxes.
    nvjpeg's pixels differ slightly from libjpeg's (0.558 against 0.514 for one weak box on the H200)."""
    jpegs = [_jpeg(s) for s in scenes]
    decoded = [Image.open(io.BytesIO(j.data)).convert("RGB") for j in jpegs]
    for a, b in zip(runner.run(jpegs), runner.run(decoded), strict=True):
        for x, y in zip(a, b, strict=True):
            assert _ok(x).evidence == pytest.approx(_ok(y).evidence, abs=0.03 if DEVICE == "cpu" else 0.08)
            assert {z.class_name for z in _ok(y).boxes if z.confidence > 0.5} <= {z.class_name for z in _ok(x).boxes}


def test_an_undecodable_jpeg_fails_alone(runner: FusedRunner, scenes: list[Image.Image]) -> None:
    good = _jpeg(scenes[0])
    bad = EncodedJpeg(good.data[:200] + b"\xff\xd9", good.size)  # the header, then nothing: no pixels
    rows = runner.run([good, bad, scenes[1]])
    assert all(isinstance(o, UndecodableImage) for o in rows[1])
    assert all(isinstance(o, DetectorOutput) for o in (*rows[0], *rows[2]))


def test_the_batched_jpeg_decode_path_and_its_fallback(scenes: list[Image.Image]) -> None:
    """The GPU path's logic (one decode_jpeg call for the batch, one by one after a failure, PIL for
    what it refuses) run on this device: torchvision decodes lists of JPEGs on the CPU too."""
    r = FusedRunner(_pair(), DEVICE)
    r.load()
    r.decodes_jpeg = True
    jpegs = [_jpeg(s) for s in scenes[:3]]
    bad = EncodedJpeg(jpegs[0].data[:200] + b"\xff\xd9", jpegs[0].size)
    together, alone = r.run(jpegs), r.run([jpegs[0], bad, jpegs[1], jpegs[2]])
    assert all(isinstance(o, UndecodableImage) for o in alone[1])
    for a, b in zip(together, [alone[0], *alone[2:]], strict=True):
        assert [_ok(x).evidence for x in a] == pytest.approx([_ok(y).evidence for y in b], abs=1e-4)
