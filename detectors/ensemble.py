"""Runs every member on an image in parallel (one long-lived worker thread each), with deadlines."""

from __future__ import annotations

import asyncio
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from PIL import Image

from detectors.base import Detection, Detector, Vote, VoteStatus
from detectors.cache import LRUCache
from detectors.voting import roadwork_probability


class Ensemble:
    """The shared detection stage: members vote in parallel, results are cached by image digest."""

    def __init__(
        self,
        members: list[Detector],
        *,
        vote_threshold: float = 0.5,
        deadline_s: float = 10.0,
        cache_size: int = 1024,
    ) -> None:
        self._members = members
        self._vote_threshold = vote_threshold
        self._deadline_s = deadline_s
        self._cache: LRUCache[Detection] = LRUCache(cache_size)
        self._in_flight: dict[str, asyncio.Future[Detection]] = {}
        # One thread per member, created once: ultralytics models are not thread-safe and the
        # first CUDA work on a fresh thread is slow, so each member lives on its own worker.
        self._workers = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"detector-{m.name}") for m in members]
        self.ready = False

    @property
    def cache(self) -> LRUCache[Detection]:
        return self._cache

    async def warmup(self) -> None:
        """Load every member in its own worker and run it once on a dummy image."""
        loop = asyncio.get_running_loop()
        dummy = Image.new("RGB", (640, 480), (128, 128, 128))
        await asyncio.gather(
            *(
                loop.run_in_executor(w, self._load_and_run, m, dummy)
                for m, w in zip(self._members, self._workers, strict=True)
            )
        )
        self.ready = True

    @staticmethod
    def _load_and_run(member: Detector, image: Image.Image) -> None:
        member.load()
        member.detect(image)

    @staticmethod
    def _left_out(member: Detector, status: VoteStatus, error: str, start: float) -> Vote:
        ms = (time.perf_counter() - start) * 1e3
        return Vote(member.name, member.weight, status, error=error, latency_ms=ms)

    async def _vote(self, member: Detector, worker: ThreadPoolExecutor, image: Image.Image) -> Vote:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        future = loop.run_in_executor(worker, member.detect, image)
        try:
            out = await asyncio.wait_for(future, self._deadline_s)
        except TimeoutError:
            return self._left_out(member, VoteStatus.TIMED_OUT, f"no answer within {self._deadline_s:g} s", start)
        except Exception as exc:  # a failed member is left out of the vote, never fails the request
            return self._left_out(member, VoteStatus.FAILED, f"{type(exc).__name__}: {exc}", start)
        evidence = out.evidence
        return Vote(
            detector=member.name,
            weight=member.weight,
            status=VoteStatus.OK,
            roadwork=evidence >= self._vote_threshold,
            confidence=evidence,
            boxes=out.boxes,
            latency_ms=(time.perf_counter() - start) * 1e3,
        )

    async def detect(self, image: Image.Image, data: bytes, digest: str | None = None) -> Detection:
        """Detection for one decoded image; `data` (its bytes) gives the cache key."""
        digest = digest or hashlib.sha256(data).hexdigest()
        cached = self._cache.get(digest)
        if cached is not None:
            return replace(cached, cached=True, latency_ms=0.0)
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
        votes = tuple(
            await asyncio.gather(*(self._vote(m, w, image) for m, w in zip(self._members, self._workers, strict=True)))
        )
        notices = tuple(n for m in self._members for n in m.notices)
        if not any(v.status is VoteStatus.OK for v in votes):
            notices += ("no detector answered: the probability is 0 by default, not a measurement",)
        result = Detection(
            probability=roadwork_probability(votes),
            votes=votes,
            image_sha256=digest,
            width=image.width,
            height=image.height,
            latency_ms=(time.perf_counter() - start) * 1e3,
            notices=notices,
        )
        if all(v.status is VoteStatus.OK for v in votes):  # partial results are not worth keeping
            self._cache.put(digest, result)
        return result

    def close(self) -> None:
        for w in self._workers:
            w.shutdown(wait=False, cancel_futures=True)
