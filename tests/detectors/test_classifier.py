"""The image-level classifier member on real (tiny, trained) weights: votes in [0, 1], no boxes, bad files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch
from PIL import Image

from detectors.base import DetectorOutput, VoteStatus, WeightsError
from detectors.classifier import ClassifierSpec, ImageClassifier
from detectors.ensemble import Ensemble, Solo
from detectors.ultralytics import UltralyticsDetector, UltralyticsSpec


def _member(weights: Path | str, threshold: float = 0.5) -> ImageClassifier:
    return ImageClassifier(ClassifierSpec(name="cnn", weights=str(weights), vote_threshold=threshold, notice="demo"))


def test_member_loads_and_scores_every_image_in_0_1(classifier_weights: Path, sample_jpeg: bytes) -> None:
    member = _member(classifier_weights)
    member.load()
    images = [Image.new("RGB", (640, 480), (90, 90, 90)), Image.new("RGB", (224, 224), (255, 96, 0))]
    outs = member.detect_batch(images)
    assert len(outs) == 2 and all(o.boxes == () and o.image_score is not None for o in outs)
    assert all(0.0 <= o.evidence <= 1.0 for o in outs)
    assert member.detect_batch(images) == outs  # eval mode: the same pixels give the same score
    assert member.notices == ("cnn: demo",)


def test_image_score_is_the_evidence_clamped_and_boxes_rule_without_it() -> None:
    assert DetectorOutput(boxes=(), image_score=0.7).evidence == 0.7
    assert DetectorOutput(boxes=(), image_score=1.5).evidence == 1.0
    assert DetectorOutput(boxes=(), image_score=-0.1).evidence == 0.0
    assert DetectorOutput(boxes=()).evidence == 0.0


@pytest.mark.parametrize("content", [b"not a checkpoint", b""])
def test_a_bad_weights_file_raises_weights_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    with pytest.raises(WeightsError, match=r"bad\.pt cannot be loaded") as err:
        _member(bad).load()
    assert err.value.member == "cnn"


def test_a_checkpoint_of_another_format_raises_weights_error(tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(WeightsError, match="not a roadwork-classifier/1 weights file"):
        _member(other).load()


def test_the_member_votes_beside_a_yolo_member_that_gives_the_boxes(classifier_weights: Path) -> None:
    yolo = UltralyticsDetector(UltralyticsSpec(name="yolo", weights="roadwork-yolo11n.pt", imgsz=320))
    low = _member(classifier_weights, threshold=1e-6)  # votes "roadwork" on anything

    async def run() -> tuple[float, list[VoteStatus], list[bool], int]:
        ens = Ensemble([Solo(yolo), Solo(low)], majority=0.5)
        try:
            await ens.warmup()
            d = await ens.detect(Image.new("RGB", (640, 480), (120, 120, 120)), b"grey")
            return d.probability, [v.status for v in d.votes], [v.roadwork for v in d.votes], len(d.votes[1].boxes)
        finally:
            ens.close()

    probability, statuses, roadwork, classifier_boxes = asyncio.run(run())
    assert statuses == [VoteStatus.OK, VoteStatus.OK] and roadwork == [False, True] and classifier_boxes == 0
    assert 0.5 < probability <= 1.0  # half the weight (the classifier) reaches a 0.5 majority
