"""The detection stage on real ultralytics models: boxes, votes, deadlines, failures, cache."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from PIL import Image

from detectors.base import VoteStatus
from detectors.ensemble import Ensemble
from detectors.ultralytics import UltralyticsDetector, UltralyticsSpec, resolve_weights
from detectors.voting import roadwork_probability

NAMES = ("cone", "drum", "barricade", "barrier", "vertical_panel", "arrow_board", "work_sign", "worker", "work_vehicle")
SAMPLE = Path(__file__).resolve().parents[2] / "router" / "assets" / "sample_roadwork.jpg"


def _member(
    name: str = "m", conf: float = 0.25, weights: str = "roadwork-yolo11n.yaml", imgsz: int = 320
) -> UltralyticsDetector:
    spec = UltralyticsSpec(name=name, weights=weights, conf=conf, imgsz=imgsz, class_names=NAMES,
                           evidence_classes=NAMES[:7])  # fmt: skip
    return UltralyticsDetector(spec)


@pytest.fixture(scope="module")
def sample() -> tuple[Image.Image, bytes]:
    data = SAMPLE.read_bytes()
    return Image.open(io.BytesIO(data)).convert("RGB"), data


def test_real_model_boxes_are_in_pixels_with_configured_names(sample: tuple[Image.Image, bytes]) -> None:
    # A very low threshold makes the untrained model emit boxes, exercising the conversion path.
    member = _member(conf=0.0001)
    member.load()
    out = member.detect(sample[0])
    assert out.boxes, "expected low-confidence boxes from the random model"
    for b in out.boxes:
        assert b.class_name in NAMES and 0 < b.confidence < 1
        x1, y1, x2, y2 = b.xyxy
        assert 0 <= x1 <= x2 <= 640 and 0 <= y1 <= y2 <= 480
        assert b.evidence == (b.class_name in NAMES[:7])
    assert out.evidence == max(b.confidence for b in out.boxes if b.evidence)
    assert member.notices and "untrained" in member.notices[0]


def test_placeholder_weights_are_reproducible(sample: tuple[Image.Image, bytes]) -> None:
    a, b = _member(conf=0.0001), _member(conf=0.0001)
    a.load()
    b.load()
    assert a.detect(sample[0]).boxes == b.detect(sample[0]).boxes


def test_missing_weights_name_the_path() -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.pt"):
        resolve_weights("nope.pt")


async def test_votes_deadline_failure_and_cache(sample: tuple[Image.Image, bytes]) -> None:
    ok = _member("ok", conf=0.0001)
    broken = _member("broken", weights="missing-weights.pt")
    ens = Ensemble([ok, broken], deadline_s=60, cache_size=8)
    try:
        img, data = sample
        d = await ens.detect(img, data)
        votes = {v.detector: v for v in d.votes}
        assert votes["ok"].status is VoteStatus.OK and votes["ok"].boxes
        assert votes["broken"].status is VoteStatus.FAILED and "missing-weights.pt" in votes["broken"].error
        assert d.probability == pytest.approx(votes["ok"].confidence)  # failed members are left out
        # A result with a failed member is not cached; a full one is.
        assert not (await ens.detect(img, data)).cached
    finally:
        ens.close()


async def test_slow_member_times_out_without_blocking(sample: tuple[Image.Image, bytes]) -> None:
    ens = Ensemble([_member("slow", imgsz=640)], deadline_s=0.001)
    try:
        await ens.warmup()
        d = await ens.detect(*sample)
        assert d.votes[0].status is VoteStatus.TIMED_OUT and d.votes[0].latency_ms < 500
        assert d.probability == 0.0 and any("no detector answered" in n for n in d.notices)
    finally:
        ens.close()


async def test_cache_and_single_flight(sample: tuple[Image.Image, bytes]) -> None:
    ens = Ensemble([_member("a")], cache_size=2)
    try:
        await ens.warmup()
        img, data = sample
        results = await asyncio.gather(*(ens.detect(img, data) for _ in range(4)))
        assert sum(not r.cached for r in results) == 1  # concurrent requests share one run
        assert (await ens.detect(img, data)).cached and ens.cache.hits >= 1
        for i in range(3):  # evict it (capacity 2)
            other = Image.new("RGB", (64, 64), (i, i, i))
            await ens.detect(other, bytes([i]) * 10)
        assert not (await ens.detect(img, data)).cached
    finally:
        ens.close()


def test_weighted_probability() -> None:
    from detectors.base import Vote

    votes = (
        Vote("a", 3.0, VoteStatus.OK, True, 0.9),
        Vote("b", 1.0, VoteStatus.OK, False, 0.1),
        Vote("c", 5.0, VoteStatus.TIMED_OUT),
    )
    assert roadwork_probability(votes) == pytest.approx((3 * 0.9 + 0.1) / 4)
    assert roadwork_probability(()) == 0.0
    assert roadwork_probability((Vote("z", 0.0, VoteStatus.OK, True, 1.0),)) == 0.0
