"""Runs every member on an image in parallel with deadlines, batching images across requests.

Members are grouped into runners (`detectors.base.Runner`): a `FusedRunner` runs every YOLO member
on one device as one step; a `Solo` runs one member alone (ultralytics `predict()`: RT-DETR,
.onnx or .engine weights). Each runner owns one long-lived worker thread (a `BatchWorker`) that
takes whatever images are queued as one batch, so concurrent requests share forward passes.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from concurrent.futures import Future
from dataclasses import replace

from PIL import Image

from detectors.base import Detection, Detector, DetectorOutput, Member, Runner, Vote, VoteStatus
from detectors.batching import BatchWorker
from detectors.cache import LRUCache
from detectors.calibration import IDENTITY, Calibration
from detectors.voting import TWO_THIRDS, tally


class Solo:
    """A runner for one member on its own (its `detect_batch`, e.g. ultralytics `predict()`)."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.members: tuple[Member, ...] = (detector,)
        self._error: Exception | None = None

    def load(self) -> None:
        try:
            self.detector.load()
        except Exception as exc:  # left out of every vote, with this reason
            self._error = exc

    def run(self, images: list[Image.Image]) -> list[list[DetectorOutput | Exception]]:
        if self._error is not None:
            return [[self._error] for _ in images]
        return [[out] for out in self.detector.detect_batch(images)]


class Ensemble:
    """The shared detection stage: members vote in parallel, results are cached by image digest."""

    def __init__(
        self,
        runners: list[Runner],
        *,
        majority: float = TWO_THIRDS,
        quorum: float = 0.5,
        calibration: Calibration = IDENTITY,
        deadline_s: float = 10.0,
        cache_size: int = 1024,
        max_batch: int = 16,
        batch_wait_s: float = 0.0,
    ) -> None:
        self._runners = runners
        self._members = [m for r in runners for m in r.members]
        self._majority = majority
        self._quorum = quorum
        self._calibration = calibration
        self._deadline_s = deadline_s
        self._cache: LRUCache[Detection] = LRUCache(cache_size)
        self._in_flight: dict[str, asyncio.Future[Detection]] = {}
        # One long-lived thread per runner: ultralytics models are not thread-safe, and the first
        # CUDA work on a fresh thread is slow (~1.2 s on the H100).
        self._workers = [
            BatchWorker(r.run, name=f"detector-{r.members[0].name}", max_batch=max_batch, wait_s=batch_wait_s)
            for r in runners
        ]
        self.ready = False

    @classmethod
    def solo(cls, members: list[Detector], **kwargs: object) -> Ensemble:
        """An ensemble whose members each run alone."""
        return cls([Solo(m) for m in members], **kwargs)  # type: ignore[arg-type]

    @property
    def members(self) -> list[Member]:
        return list(self._members)

    @property
    def cache(self) -> LRUCache[Detection]:
        return self._cache

    @property
    def workers(self) -> list[BatchWorker[Image.Image, list[DetectorOutput | Exception]]]:
        return self._workers

    async def warmup(self) -> None:
        """Load every runner on its own worker thread and run it once on a dummy image."""
        dummy = Image.new("RGB", (640, 480), (128, 128, 128))
        await asyncio.gather(
            *(asyncio.wrap_future(w.call(r.load)) for r, w in zip(self._runners, self._workers, strict=True))
        )
        await asyncio.gather(*(asyncio.wrap_future(w.submit(dummy)) for w in self._workers))
        self.ready = True

    async def _runner_votes(self, runner: Runner, worker: BatchWorker[Image.Image, list[DetectorOutput | Exception]],
                            image: Image.Image) -> list[Vote]:  # fmt: skip
        start = time.perf_counter()
        future: Future[list[DetectorOutput | Exception]] = worker.submit(image)
        try:
            outputs = await asyncio.wait_for(asyncio.wrap_future(future), self._deadline_s)
        except TimeoutError:
            future.cancel()  # skipped if it has not started
            return [_left_out(m, VoteStatus.TIMED_OUT, f"no answer within {self._deadline_s:g} s", start)
                    for m in runner.members]  # fmt: skip
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:  # a failed runner is left out of the vote, never fails the request
            return [_left_out(m, VoteStatus.FAILED, f"{type(exc).__name__}: {exc}", start) for m in runner.members]
        ms = (time.perf_counter() - start) * 1e3
        votes = []
        for member, out in zip(runner.members, outputs, strict=True):
            if isinstance(out, Exception):
                votes.append(_left_out(member, VoteStatus.FAILED, f"{type(out).__name__}: {out}", start))
                continue
            evidence = out.evidence
            roadwork = evidence >= member.threshold
            votes.append(Vote(member.name, member.weight, VoteStatus.OK, roadwork, evidence, out.boxes, latency_ms=ms))
        return votes

    def lookup(self, digest: str) -> Detection | None:
        """The cached detection of an image digest (marked cached), or None."""
        cached = self._cache.get(digest)
        return None if cached is None else replace(cached, cached=True, latency_ms=0.0)

    async def detect(self, image: Image.Image, data: bytes, digest: str | None = None) -> Detection:
        """Detection for one decoded image; `data` (its bytes) gives the cache key."""
        digest = digest or hashlib.sha256(data).hexdigest()
        cached = self.lookup(digest)
        if cached is not None:
            return cached
        running = self._in_flight.get(digest)
        if running is not None:  # the same image is being detected right now: share that result
            await asyncio.wait({running})
            if not running.cancelled() and running.exception() is None:
                return replace(running.result(), cached=True, latency_ms=0.0)
        future: asyncio.Future[Detection] = asyncio.get_running_loop().create_future()
        self._in_flight[digest] = future
        try:
            result = await self._run(image, digest)
        except BaseException:
            future.cancel()  # waiters run the detection themselves
            raise
        finally:
            if self._in_flight.get(digest) is future:
                del self._in_flight[digest]
        future.set_result(result)
        return result

    async def _run(self, image: Image.Image, digest: str) -> Detection:
        start = time.perf_counter()
        groups = await asyncio.gather(
            *(self._runner_votes(r, w, image) for r, w in zip(self._runners, self._workers, strict=True))
        )
        votes = tuple(v for g in groups for v in g)
        outcome = tally(votes, self._majority)
        configured = sum(m.weight for m in self._members)
        quorum_met = outcome.answered and outcome.answered_weight >= self._quorum * configured - 1e-9
        notices = tuple(n for m in self._members for n in m.notices)
        if not outcome.answered:
            notices += ("no detector answered: roadwork_probability is 0.5 (no information), not a measurement",)
        elif not quorum_met:
            answered = sum(v.status is VoteStatus.OK for v in votes)
            notices += (
                f"only {answered} of {len(votes)} detectors answered ({outcome.answered_weight:g} of "
                f"{configured:g} vote weight, below the quorum of {self._quorum:.0%}): the verdict rests on few votes",
            )
        result = Detection(
            probability=self._calibration(outcome.score) if outcome.answered else 0.5,
            votes=votes,
            image_sha256=digest,
            width=image.width,
            height=image.height,
            latency_ms=(time.perf_counter() - start) * 1e3,
            notices=notices,
            yes_share=outcome.yes_share,
            vote_confidence=outcome.confidence,
            raw_score=outcome.score,
            quorum_met=quorum_met,
        )
        if all(v.status is VoteStatus.OK for v in votes):  # partial results are not worth keeping
            self._cache.put(digest, result)
        return result

    def close(self) -> None:
        for w in self._workers:
            w.close()


def _left_out(member: Member, status: VoteStatus, error: str, start: float) -> Vote:
    ms = (time.perf_counter() - start) * 1e3
    return Vote(member.name, member.weight, status, error=error, latency_ms=ms)
