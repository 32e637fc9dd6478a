"""One request's flow: validate -> classify -> detect -> dispatch -> events."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing, nullcontext
from dataclasses import dataclass, replace
from weakref import WeakValueDictionary

from detectors.base import Detection
from detectors.ensemble import Ensemble
from engines.base import GenerationRequest, ImagePart, Usage
from router.classify import classify
from router.config import Config
from router.dispatch import Dispatcher, Served
from router.errors import InvalidRequest, RouterError, Unavailable
from router.images import DecodedImage, decode_image, sniff_mime
from router.metrics import Metrics
from router.pricing import estimate
from router.prompting import build_messages, degraded_answer
from router.sessions import Session, SessionStore
from router.types import (
    AskEvent,
    AskInput,
    BatchOptions,
    Cost,
    DeltaEvent,
    DetectionEvent,
    DoneEvent,
    RequestKind,
    Route,
)

_HASH_INLINE = 1 << 20  # bytes; larger images are hashed on a worker thread while decoding


@dataclass
class Trace:
    """What the pipeline decided so far, for metrics and logs even when the request fails."""

    kind: RequestKind | None = None
    pool: str = ""


class Pipeline:
    """The router's domain logic; the gRPC servicer and the bulk-job runner both call it."""

    def __init__(
        self, config: Config, ensemble: Ensemble, dispatcher: Dispatcher, sessions: SessionStore, metrics: Metrics
    ) -> None:
        self.config = config
        self.ensemble = ensemble
        self.dispatcher = dispatcher
        self.sessions = sessions
        self.metrics = metrics
        self._session_locks: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()

    # -- detection -------------------------------------------------------------------------

    async def decode(self, data: bytes, field: str = "image") -> DecodedImage:
        """Validate and decode on a worker thread (PIL and hashlib release the GIL), off the event loop.

        Bytes whose detection is cached were validated when first seen: they skip decoding (a
        follow-up or a re-submitted image costs a digest, not a JPEG decode)."""
        lim = self.config.limits
        mime = sniff_mime(data) if len(data) <= min(lim.max_image_bytes, _HASH_INLINE) else None
        if mime is not None:  # small enough to hash on the loop (~1 us per KB)
            digest = hashlib.sha256(data).hexdigest()
            if self.ensemble.cache.peek(digest) is not None:
                return DecodedImage(data=data, sha256=digest, mime=mime, pixels=None)
        return await self._decode_full(data, field)

    async def _decode_full(self, data: bytes, field: str = "image") -> DecodedImage:
        lim = self.config.limits
        return await asyncio.to_thread(
            decode_image, data, max_bytes=lim.max_image_bytes, max_pixels=lim.max_image_pixels, field=field
        )

    async def detect_image(self, image: DecodedImage) -> Detection:
        result = self.ensemble.lookup(image.sha256) if image.pixels is None else None
        if result is None:
            if image.pixels is None:  # evicted since `decode` looked: decode after all
                image = await self._decode_full(image.data)
            assert image.pixels is not None
            result = await self.ensemble.detect(image.pixels, image.data, image.sha256)
        self.metrics.detection_cache.labels("hit" if result.cached else "miss").inc()
        if not result.cached:
            self.metrics.detection_seconds.observe(result.latency_ms / 1e3)
        return result

    async def detect(self, data: bytes) -> Detection:
        """Detect RPC: validate the image, run (or reuse) the ensemble."""
        return await self.detect_image(await self.decode(data))

    # -- ask ---------------------------------------------------------------------------------

    def _check_question(self, question: str, field: str = "question") -> str:
        q = question.strip()
        if not q:
            raise InvalidRequest(f"{field} is required: ask something about the image")
        if len(q) > self.config.limits.max_question_chars:
            raise InvalidRequest(
                f"{field} is {len(q)} characters; the limit is {self.config.limits.max_question_chars}"
                " (limits.max_question_chars)"
            )
        return q

    def generation_options(self, max_tokens: int, temperature: float | None) -> tuple[int, float]:
        """(max_tokens, temperature) with defaults filled in; INVALID_ARGUMENT when out of range."""
        gen = self.config.generation
        if max_tokens > gen.max_tokens_cap:
            raise InvalidRequest(f"options.max_tokens {max_tokens} is over the server's cap of {gen.max_tokens_cap}")
        t = gen.temperature if temperature is None else temperature
        if not 0.0 <= t <= 2.0:
            raise InvalidRequest(f"options.temperature {t} is outside [0, 2]")
        return (max_tokens or gen.max_tokens), t

    def session_lock(self, session_id: str) -> asyncio.Lock:
        lock = self._session_locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._session_locks[session_id] = lock
        return lock

    async def ask(self, inp: AskInput, trace: Trace | None = None) -> AsyncGenerator[AskEvent, None]:
        """Stream one Ask: a DetectionEvent, DeltaEvents, then a DoneEvent."""
        trace = trace or Trace()
        start = time.perf_counter()
        question = self._check_question(inp.question)
        max_tokens, temperature = self.generation_options(inp.max_tokens, inp.temperature)
        image = await self.decode(inp.image) if inp.image else None
        trace.kind = kind = classify(bulk=False, session_id=inp.session_id, open_session=inp.open_session)
        if not inp.session_id and image is None:
            raise InvalidRequest("image is required unless session_id names a session that has one")
        session: Session | None = None
        if inp.session_id:
            session = await self.sessions.get(inp.session_id)
        async with self.session_lock(session.id) if session else nullcontext():
            if session is not None:
                session = await self.sessions.get(session.id)  # re-read under the lock: history may have grown
                if image is None and not session.image:
                    raise InvalidRequest(f"session '{session.id}' has no image yet: send one with this question")
            detection_ms = 0.0
            if image is not None:
                detection = await self.detect_image(image)
                detection_ms = detection.latency_ms
            else:
                assert session is not None and session.detection is not None
                detection = replace(session.detection, cached=True, latency_ms=0.0)
            if session is None and inp.open_session:
                session = await self.sessions.create(image=image, detection=detection)
            session_id = session.id if session else ""
            yield DetectionEvent(detection, session_id)

            if image is not None:
                part = ImagePart(image.data, image.mime)
            else:
                assert session is not None
                part = ImagePart(session.image, session.image_mime)
            history = session.history[-self.config.sessions.max_history_turns :] if session else []
            if self.config.sessions.max_history_turns == 0:
                history = []
            messages = build_messages(
                system_prompt=self.config.generation.system_prompt,
                detection=detection,
                question=question,
                history=history,
                image=part,
            )
            request = GenerationRequest(
                messages=messages,
                max_tokens=max_tokens,
                temperature=temperature,
                request_id=inp.request_id,
            )
            done: DoneEvent | None = None
            async with aclosing(
                self.generate(
                    kind,
                    request,
                    detection,
                    key=session_id,
                    strict=inp.strict,
                    start=start,
                    trace=trace,
                    deadline=inp.deadline,
                )
            ) as events:
                async for event in events:
                    if isinstance(event, DoneEvent):
                        done = event
                    else:
                        yield event
            assert done is not None
            if session is not None:
                await self.sessions.record_turn(session, question, done.answer, image=image, detection=detection)
            yield DoneEvent(
                answer=done.answer,
                route=done.route,
                usage=done.usage,
                cost=done.cost,
                finish_reason=done.finish_reason,
                degraded=done.degraded,
                session_id=session_id,
                detection_ms=detection_ms,
                ttft_ms=done.ttft_ms,
                total_ms=(time.perf_counter() - start) * 1e3,
                notices=tuple(dict.fromkeys((*detection.notices, *done.notices))),
            )

    async def generate(
        self,
        kind: RequestKind,
        request: GenerationRequest,
        detection: Detection,
        *,
        key: str,
        strict: bool,
        start: float,
        trace: Trace,
        deadline: float | None = None,
    ) -> AsyncGenerator[DeltaEvent | DoneEvent, None]:
        """Dispatch and stream; degrade to a detections-only answer when no engine can answer."""
        parts: list[str] = []
        ttft_ms = 0.0
        try:
            async with aclosing(self.dispatcher.stream(kind, request, key=key, deadline=deadline)) as events:
                async for event in events:
                    if isinstance(event, Served):
                        served = event
                        break
                    if not parts:
                        ttft_ms = (time.perf_counter() - start) * 1e3
                    parts.append(event.text)
                    yield DeltaEvent(event.text)
        except Unavailable:
            if strict or parts or not self.config.routing.degrade_to_detections:
                raise  # strict, or part of an engine's answer was already streamed: say it broke
            answer = degraded_answer(detection)
            route = Route(kind, "", "detections_only", "", "")
            trace.pool = "detections_only"
            yield DeltaEvent(answer)
            yield DoneEvent(
                answer=answer,
                route=route,
                usage=Usage(),
                cost=Cost(),
                finish_reason="degraded",
                degraded=True,
                session_id=key,
                detection_ms=0.0,
                ttft_ms=(time.perf_counter() - start) * 1e3,
                total_ms=(time.perf_counter() - start) * 1e3,
                notices=("no engine could answer: this answer comes from the detections alone",),
            )
            return
        route = served.route
        trace.pool = route.pool
        usage = served.finished.usage
        cost = estimate(served.price, usage)
        m = self.metrics
        if parts:
            m.ttft_seconds.labels(kind.value, route.pool).observe(ttft_ms / 1e3)
        m.tokens.labels(route.pool, "prompt").inc(usage.prompt_tokens)
        m.tokens.labels(route.pool, "completion").inc(usage.completion_tokens)
        m.tokens.labels(route.pool, "cached").inc(usage.cached_tokens)
        m.cost_usd.labels(route.pool).inc(cost.total_usd)
        if route.fallback_from:
            m.fallbacks.labels(kind.value, route.pool).inc()
        yield DoneEvent(
            answer="".join(parts),
            route=route,
            usage=usage,
            cost=cost,
            finish_reason=served.finished.finish_reason,
            degraded=False,
            session_id=key,
            detection_ms=0.0,
            ttft_ms=ttft_ms,
            total_ms=(time.perf_counter() - start) * 1e3,
            notices=served.finished.notices,
        )

    # -- bulk items ----------------------------------------------------------------------------

    async def answer_item(self, image_bytes: bytes, question: str, options: BatchOptions) -> ItemOutcome:
        """Run one bulk item (kind BATCH); failures are returned as the item's error, never raised."""
        start = time.perf_counter()
        try:
            image = await self.decode(image_bytes)
            detection = await self.detect_image(image)
            if options.detect_only:
                return ItemOutcome(detection=detection)
            max_tokens, temperature = self.generation_options(options.max_tokens, options.temperature)
            messages = build_messages(
                system_prompt=self.config.generation.system_prompt,
                detection=detection,
                question=self._check_question(question or options.default_question),
                history=[],
                image=ImagePart(image.data, image.mime),
            )
            request = GenerationRequest(messages=messages, max_tokens=max_tokens, temperature=temperature, priority=1)
            done: DoneEvent | None = None
            async with aclosing(
                self.generate(RequestKind.BATCH, request, detection, key="", strict=False, start=start, trace=Trace())
            ) as events:
                async for event in events:
                    if isinstance(event, DoneEvent):
                        done = event
            assert done is not None
            return ItemOutcome(detection=detection, done=done)
        except RouterError as exc:
            return ItemOutcome(error_code=exc.code.name, error_message=exc.message)


@dataclass(frozen=True)
class ItemOutcome:
    """What running a bulk item produced: a detection and answer, or an error."""

    detection: Detection | None = None
    done: DoneEvent | None = None
    error_code: str = ""
    error_message: str = ""
