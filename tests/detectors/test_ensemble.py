"""The detection stage on real ultralytics models: boxes, votes, deadlines, failures, cache."""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from detectors.base import DetectorOutput, VoteStatus
from detectors.calibration import Calibration, Curve
from detectors.ensemble import Ensemble, Solo
from detectors.ultralytics import UltralyticsDetector, UltralyticsSpec, resolve_weights

NAMES = ("cone", "drum", "barricade", "barrier", "vertical_panel", "arrow_board", "work_sign", "worker", "work_vehicle")
SAMPLE = Path(__file__).resolve().parents[2] / "router" / "assets" / "sample_roadwork.jpg"


def _member(
    name: str = "m",
    conf: float = 0.25,
    weights: str = "roadwork-yolo11n.yaml",
    imgsz: int = 320,
    threshold: float = 0.5,
    weight: float = 1.0,
) -> UltralyticsDetector:
    spec = UltralyticsSpec(name=name, weights=weights, conf=conf, imgsz=imgsz, class_names=NAMES,
                           evidence_classes=NAMES[:7], vote_threshold=threshold, weight=weight)  # fmt: skip
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
    ens = Ensemble.solo([ok, broken], deadline_s=60, cache_size=8)
    try:
        img, data = sample
        d = await ens.detect(img, data)
        votes = {v.detector: v for v in d.votes}
        assert votes["ok"].status is VoteStatus.OK and votes["ok"].boxes
        assert votes["broken"].status is VoteStatus.FAILED and "missing-weights.pt" in votes["broken"].error
        # The failed member is left out: "ok" alone decides (a lone "no" scores half its evidence).
        assert d.raw_score == pytest.approx(0.5 * votes["ok"].confidence) and not votes["ok"].roadwork
        assert d.probability == d.raw_score and d.quorum_met  # uncalibrated; 1 of 2 equal weights is 50 %
        # A result with a failed member is not cached; a full one is.
        assert not (await ens.detect(img, data)).cached
    finally:
        ens.close()


async def test_slow_member_times_out_without_blocking(sample: tuple[Image.Image, bytes]) -> None:
    ens = Ensemble.solo([_member("slow", imgsz=640)], deadline_s=0.001)
    try:
        await ens.warmup()
        d = await ens.detect(*sample)
        assert d.votes[0].status is VoteStatus.TIMED_OUT and d.votes[0].latency_ms < 500
        assert d.probability == 0.5 and not d.roadwork and not d.quorum_met
        assert any("no detector answered" in n for n in d.notices)
    finally:
        ens.close()


async def test_cache_and_single_flight(sample: tuple[Image.Image, bytes]) -> None:
    ens = Ensemble.solo([_member("a")], cache_size=2)
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


class _Gated(Solo):
    """A real member whose runs wait for `gate`: holds the detector thread mid-run on demand."""

    def __init__(self, member: UltralyticsDetector) -> None:
        super().__init__(member)
        self.gate = threading.Event()
        self.gate.set()
        self.images = 0

    def run(self, images: list[Image.Image]) -> list[list[DetectorOutput | Exception]]:
        self.images += len(images)
        self.gate.wait(30)
        return super().run(images)


async def _cached(ens: Ensemble, digest: str) -> None:
    for _ in range(600):
        if ens.cache.peek(digest) is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the detection never reached the cache")


@pytest.fixture
async def held() -> AsyncIterator[tuple[_Gated, Ensemble]]:
    """A warmed-up one-member ensemble (deadline 50 ms) whose next run holds the detector thread
    until the test sets `gate`."""
    gated = _Gated(_member("a"))
    ens = Ensemble([gated], deadline_s=0.05, cache_size=8)
    try:
        await ens.warmup()
        gated.images = 0
        gated.gate.clear()
        yield gated, ens
    finally:
        gated.gate.set()
        ens.close()


async def test_work_past_a_deadline_runs_once_and_fills_the_cache(
    sample: tuple[Image.Image, bytes], held: tuple[_Gated, Ensemble]
) -> None:
    # An overloaded detector must catch up: requests that time out while an image is being
    # detected leave with a partial answer, but neither queue the image again nor stop the work.
    (gated, ens), (img, data) = held, sample
    first = asyncio.ensure_future(ens.detect(img, data))
    await asyncio.sleep(0.02)
    later = await asyncio.gather(*(ens.detect(img, data) for _ in range(8)))
    for d in [await first, *later]:
        assert d.votes[0].status is VoteStatus.TIMED_OUT and not d.cached and not d.quorum_met
    gated.gate.set()
    await _cached(ens, hashlib.sha256(data).hexdigest())
    done = await ens.detect(img, data)
    assert done.cached and done.votes[0].status is VoteStatus.OK and done.quorum_met
    assert gated.images == 1  # nine requests, one forward pass


async def test_work_not_started_when_its_last_waiter_leaves_is_dropped(
    sample: tuple[Image.Image, bytes], held: tuple[_Gated, Ensemble]
) -> None:
    (gated, ens), (img, data) = held, sample
    running = asyncio.ensure_future(ens.detect(img, data))  # holds the detector thread
    await asyncio.sleep(0.02)
    queued = await ens.detect(Image.new("RGB", (64, 64), (9, 9, 9)), b"other")  # behind it; gives up
    assert queued.votes[0].status is VoteStatus.TIMED_OUT
    await running
    gated.gate.set()
    await _cached(ens, hashlib.sha256(data).hexdigest())
    await asyncio.sleep(0.2)
    assert gated.images == 1 and ens.cache.peek(hashlib.sha256(b"other").hexdigest()) is None


async def test_trained_members_vote_by_weighted_two_thirds_majority(sample: tuple[Image.Image, bytes]) -> None:
    img, data = sample
    yolo11 = _member("yolo11", weights="roadwork-yolo11n.pt", imgsz=512)
    yolo8 = _member("yolo8", weights="roadwork-yolov8n.pt", imgsz=512)
    sceptic = _member("sceptic", weights="roadwork-yolov8n.pt", imgsz=512, threshold=1.0)  # never says yes
    ens = Ensemble.solo([yolo11, yolo8], cache_size=0)
    try:
        both = await ens.detect(img, data)  # the sample shows roadwork: both trained members see it
        assert all(v.roadwork for v in both.votes) and both.roadwork and both.yes_share == 1.0
        c = [v.confidence for v in both.votes]
        assert both.vote_confidence == pytest.approx((c[0] * c[1]) ** 0.5, rel=1e-5)
        assert both.probability == pytest.approx(0.5 + 0.5 * both.vote_confidence)
    finally:
        ens.close()
    ens = Ensemble.solo([yolo11, sceptic], cache_size=0)  # 1 of 2: no 2/3 majority
    try:
        split = await ens.detect(img, data)
        assert [v.roadwork for v in split.votes] == [True, False] and split.yes_share == 0.5
        assert not split.roadwork and split.probability < 0.5
    finally:
        ens.close()
    ens = Ensemble.solo([yolo11, yolo8, sceptic], cache_size=0)  # 2 of 3: a majority
    try:
        assert (await ens.detect(img, data)).roadwork
    finally:
        ens.close()
    heavy = _member("heavy-sceptic", weights="roadwork-yolov8n.pt", imgsz=512, threshold=1.0, weight=2.5)
    ens = Ensemble.solo([yolo11, yolo8, heavy], cache_size=0)  # 2 of 4.5 weight: outvoted
    try:
        d = await ens.detect(img, data)
        assert not d.roadwork and d.yes_share == pytest.approx(2 / 4.5)
    finally:
        ens.close()


async def test_quorum_and_calibration(sample: tuple[Image.Image, bytes]) -> None:
    img, data = sample
    trained = _member("yolo11", weights="roadwork-yolo11n.pt", imgsz=512)
    broken = [_member(f"broken{i}", weights="missing.pt") for i in range(2)]
    halve = Calibration(no=Curve(), yes=Curve(a=-1.0, b=1.0), members=("yolo11", "broken0", "broken1"))
    ens = Ensemble.solo([trained, *broken], quorum=0.5, calibration=halve, cache_size=0)
    try:
        d = await ens.detect(img, data)
        assert d.roadwork and not d.quorum_met  # 1 of 3 weight answered: below a 50 % quorum
        assert any("only 1 of 3 detectors answered" in n for n in d.notices)
        assert d.probability == pytest.approx(halve(d.raw_score)) and 0.5 < d.probability < d.raw_score
    finally:
        ens.close()
