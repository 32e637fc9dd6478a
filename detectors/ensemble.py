"""Runs every member on an image in parallel with deadlines, batching images across requests.

Members are grouped into runners (`detectors.base.Runner`): a `FusedRunner` runs every YOLO member
on one device as one step; a `Solo` runs one member alone (ultralytics `predict()`: RT-DETR,
.onnx or .engine weights). Each runner owns one long-lived worker thread (a `BatchWorker`) that
takes whatever images are queued as one batch, so concurrent requests share forward passes.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from concurrent.futures import Future
from dataclasses import replace

from PIL import Image

from detectors.base import (
    Detection,
    Detector,
    DetectorOutput,
    EncodedJpeg,
    Member,
    Picture,
    Runner,
    UndecodableImage,
    Vote,
    VoteStatus,
    WeightsError,
    decoded,
)
from detectors.batching import BATCH_SIZE, BatchWorker
from detectors.cache import LRUCache
from detectors.calibration import IDENTITY, Calibration
from detectors.voting import TWO_THIRDS, tally


class Solo:
    """A runner for one member on its own (its `detect_batch`, e.g. ultralytics `predict()`)."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.members: tuple[Member, ...] = (detector,)
        self._error: Exception | None = None

    decodes_jpeg = False

    def load(self) -> None:
        try:
            self.detector.load()
        except WeightsError:
            raise
        except Exception as exc:  # left out of every vote, with this reason
            self._error = exc

    def run(self, images: list[Picture]) -> list[list[DetectorOutput | Exception]]:
        if self._error is not None:
            return [[self._error] for _ in images]
        pixels = decoded(images)
        good = [p for p in pixels if isinstance(p, Image.Image)]
        outs = iter(self.detector.detect_batch(good) if good else [])
        return [[next(outs)] if isinstance(p, Image.Image) else [p] for p in pixels]


class _Pending:
    """One image's detection in progress: a future per runner, shared by every request that waits."""

    def __init__(self, futures: list[Future[list[DetectorOutput | Exception]]], size: tuple[int, int]) -> None:
        self.futures = futures
        self.waitables = [asyncio.wrap_future(f) for f in futures]  # one wrapper each, shared by every waiter
        self.size = size
        self.started = time.perf_counter()
        self.finished: dict[int, float] = {}  # id(future) -> when it finished
        self.waiters = 0
        self.result: Detection | None = None  # set once every runner has answered
        self.settled: asyncio.Future[None] | None = None  # the task that caches the whole result
        for f in futures:
            f.add_done_callback(lambda f: self.finished.setdefault(id(f), time.perf_counter()))


class Remembered:
    """Detections by image digest (an LRU) and the batch each member ran them in (for traces)."""

    def __init__(self, cache_size: int) -> None:
        self._cache: LRUCache[Detection] = LRUCache(cache_size)
        self._batches: LRUCache[dict[str, int]] = LRUCache(256)

    @property
    def cache(self) -> LRUCache[Detection]:
        return self._cache

    def batch_sizes(self, digest: str) -> dict[str, int]:
        """The batch each member ran an image in, by member name, for its last detection (for traces)."""
        return self._batches.peek(digest) or {}

    def lookup(self, digest: str) -> Detection | None:
        """The cached detection of an image digest (marked cached), or None."""
        cached = self._cache.get(digest)
        return None if cached is None else replace(cached, cached=True, latency_ms=0.0)


class Ensemble(Remembered):
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
        super().__init__(cache_size)
        self._in_flight: dict[str, _Pending] = {}
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
    def workers(self) -> list[BatchWorker[Picture, list[DetectorOutput | Exception]]]:
        return self._workers

    @property
    def decodes_jpeg(self) -> bool:
        """Whether every runner decodes JPEGs on its own device: then callers pass EncodedJpeg pictures."""
        return bool(self._runners) and all(r.decodes_jpeg for r in self._runners)

    async def warmup(self) -> None:
        """Load every runner on its own worker thread and run it once on a dummy image (and once on
        a dummy JPEG where runners decode them, so the first request does not set up the decoder)."""
        dummy = Image.new("RGB", (640, 480), (128, 128, 128))
        await asyncio.gather(
            *(asyncio.wrap_future(w.call(r.load)) for r, w in zip(self._runners, self._workers, strict=True))
        )
        buf = io.BytesIO()
        dummy.save(buf, "JPEG")
        dummies: list[Picture] = [dummy, EncodedJpeg(buf.getvalue(), dummy.size)] if self.decodes_jpeg else [dummy]
        for d in dummies:
            await asyncio.gather(*(asyncio.wrap_future(w.submit(d)) for w in self._workers))
        self.ready = True

    async def detect(self, image: Picture, data: bytes, digest: str | None = None) -> Detection:
        """Detection for one image (decoded, or a JPEG for runners that decode on their GPU); `data`
        (its bytes) gives the cache key. UndecodableImage when a runner could not decode it.

        Each runner's work on an image is queued once, however many requests wait for it: a
        request that reaches its deadline leaves with the votes in so far, while the work runs on
        for the others and fills the cache. Re-queuing the image per timed-out request made an
        overloaded CPU detector fall behind for good (every answer partial, none cached). Work
        that has not started when its last waiter leaves is dropped."""
        digest = digest or hashlib.sha256(data).hexdigest()
        done, pending = self._join(digest)
        if done is not None:
            return done
        start = time.perf_counter()
        if pending is not None:
            return await self._wait(digest, pending, True, start)
        pending = self._start(digest, image, [w.submit(image) for w in self._workers])
        return await self._wait(digest, pending, False, start)

    async def detect_many(self, images: list[Picture], digests: list[str]) -> list[Detection | UndecodableImage]:
        """Detection for many images at once (a bulk job's): those neither cached nor in flight go to
        each runner as whole batches of `max_batch` (`BatchWorker.submit_many`), not one by one."""
        start = time.perf_counter()
        found = [self._join(d) for d in digests]
        fresh: dict[str, int] = {}
        for i, (done, pending) in enumerate(found):
            if done is None and pending is None:
                fresh.setdefault(digests[i], i)
        futures = [w.submit_many([images[i] for i in fresh.values()]) for w in self._workers]
        started = {d: self._start(d, images[i], [f[k] for f in futures]) for k, (d, i) in enumerate(fresh.items())}

        async def one(i: int) -> Detection | UndecodableImage:
            done, pending = found[i]
            if done is not None:
                return done
            ours = fresh.get(digests[i]) == i
            try:
                return await self._wait(digests[i], pending or started[digests[i]], not ours, start)
            except UndecodableImage as exc:
                return exc

        return list(await asyncio.gather(*(one(i) for i in range(len(digests)))))

    def _join(self, digest: str) -> tuple[Detection | None, _Pending | None]:
        """The image's cached (or just finished) detection, else its detection in flight, else neither."""
        cached = self.lookup(digest)
        if cached is not None:
            return cached, None
        pending = self._in_flight.get(digest)
        if pending is not None and all(f.done() for f in pending.futures):  # over; not yet settled
            result = self._complete(digest, pending)
            if result is not None and whole(result):
                return replace(result, cached=True, latency_ms=0.0), None
            pending = None  # a partial result is not reused: detect again
        return None, pending

    def _start(self, digest: str, image: Picture, futures: list[Future[list[DetectorOutput | Exception]]]) -> _Pending:
        pending = self._in_flight[digest] = _Pending(futures, image.size)
        pending.settled = asyncio.ensure_future(self._settle(digest, pending))
        return pending

    async def _wait(self, digest: str, pending: _Pending, joined: bool, start: float) -> Detection:
        """Wait (up to the deadline) for the image's runners; a request that joined another's work is
        answered as a cache hit."""
        pending.waiters += 1
        try:
            await asyncio.wait(pending.waitables, timeout=self._deadline_s)
        finally:
            pending.waiters -= 1
            if pending.waiters == 0:
                for f in pending.futures:
                    f.cancel()  # skipped by the worker unless it has started
        _raise_undecodable(pending)
        result = self._complete(digest, pending)
        if result is None:  # the deadline passed first: the votes in so far
            return self._tally(digest, pending, start)
        return replace(result, cached=True, latency_ms=0.0) if joined else result

    def _complete(self, digest: str, pending: _Pending) -> Detection | None:
        """The whole result once every runner has answered (tallied once), else None."""
        if pending.result is None and all(f.done() and not f.cancelled() for f in pending.futures):
            pending.result = self._tally(digest, pending, pending.started)
        return pending.result

    async def _settle(self, digest: str, pending: _Pending) -> None:
        """Once every runner is done: cache a complete result; forget the image either way."""
        try:
            await asyncio.wait(pending.waitables)
            for w in pending.waitables:  # read here: a runner's error reaches the vote, not the log
                _ = w.cancelled() or w.exception()
            result = self._complete(digest, pending)
            if result is not None and whole(result):
                self._cache.put(digest, result)  # partial results are not worth keeping
        finally:
            if self._in_flight.get(digest) is pending:
                del self._in_flight[digest]

    def _votes(self, runner: Runner, future: Future[list[DetectorOutput | Exception]], pending: _Pending,
               start: float) -> list[Vote]:  # fmt: skip
        """A runner's votes: its outputs if it has answered, else left out as timed out."""
        if not future.done() or future.cancelled():
            return [_left_out(m, VoteStatus.TIMED_OUT, f"no answer within {self._deadline_s:g} s", start)
                    for m in runner.members]  # fmt: skip
        exc = future.exception()
        if exc is not None:  # a failed runner is left out of the vote, never fails the request
            return [_left_out(m, VoteStatus.FAILED, f"{type(exc).__name__}: {exc}", start) for m in runner.members]
        ms = max(0.0, pending.finished.get(id(future), time.perf_counter()) - start) * 1e3
        votes = []
        for member, out in zip(runner.members, future.result(), strict=True):
            if isinstance(out, Exception):
                votes.append(_left_out(member, VoteStatus.FAILED, f"{type(out).__name__}: {out}", start))
                continue
            evidence = out.evidence
            roadwork = evidence >= member.threshold
            votes.append(Vote(member.name, member.weight, VoteStatus.OK, roadwork, evidence, out.boxes, latency_ms=ms))
        return votes

    def _tally(self, digest: str, pending: _Pending, start: float) -> Detection:
        """The ensemble's verdict from the votes in so far."""
        self._batches.put(digest, {m.name: getattr(f, BATCH_SIZE, 0) for r, f in zip(self._runners, pending.futures,
                               strict=True) for m in r.members if f.done()})  # fmt: skip
        votes = tuple(v for r, f in zip(self._runners, pending.futures, strict=True)
                      for v in self._votes(r, f, pending, start))  # fmt: skip
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
        return Detection(
            probability=self._calibration(outcome.score) if outcome.answered else 0.5,
            votes=votes,
            image_sha256=digest,
            width=pending.size[0],
            height=pending.size[1],
            latency_ms=(time.perf_counter() - start) * 1e3,
            notices=notices,
            yes_share=outcome.yes_share,
            vote_confidence=outcome.confidence,
            raw_score=outcome.score,
            quorum_met=quorum_met,
        )

    def close(self) -> None:
        for w in self._workers:
            w.close()


def _raise_undecodable(pending: _Pending) -> None:
    """A runner could not decode the image (its header was valid): the request's error, not a vote."""
    for f in pending.futures:
        if f.done() and not f.cancelled() and f.exception() is None:
            bad = next((o for o in f.result() if isinstance(o, UndecodableImage)), None)
            if bad is not None:
                raise bad


def whole(result: Detection) -> bool:
    """Whether every member answered."""
    return all(v.status is VoteStatus.OK for v in result.votes)


def _left_out(member: Member, status: VoteStatus, error: str, start: float) -> Vote:
    ms = (time.perf_counter() - start) * 1e3
    return Vote(member.name, member.weight, status, error=error, latency_ms=ms)
