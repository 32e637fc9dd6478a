"""One request's flow, in stages: validate -> classify -> detect -> build the request -> dispatch -> done.

`ask` strings the stages together: `_session_turn` (the session, under its lock), `_detect_turn`
(detection, or the session's reused), `request` (messages and, for a verdict, the schema), `generate`
(dispatch, or a detections-only answer), `done` (the last event, built in this one place). The image
is fitted to each pool's pixel budget at dispatch (router/flow/vision.py), since pools differ.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, replace
from weakref import WeakValueDictionary

from detectors.base import Detection, DetectionStage, UndecodableImage
from detectors.ensemble import whole
from detectors.proxy import DetectionLost
from engines.base import Delta, GenerationRequest, ImagePart, ResponseSchema, Usage
from router.config import Config
from router.dispatch.dispatcher import Dispatcher, Served
from router.dispatch.policies.base import RouteKey
from router.dispatch.pricing import estimate
from router.errors import (
    BadImage,
    ConflictingFields,
    DetectionUnavailable,
    MissingField,
    OptionOutOfRange,
    QuestionTooLong,
    RouterError,
    Unavailable,
)
from router.flow.classify import classify
from router.flow.images import DecodedImage, check_jpeg, decode_image, sniff_mime
from router.flow.prompting import build_messages, degraded_answer
from router.flow.shared_cache import SharedDetectionCache
from router.flow.verdict import INSTRUCTION, SCHEMA, SCHEMA_NAME, Verdict, VerdictError, merge, parse_verdict
from router.flow.vision import ImageSent
from router.observe import tracing
from router.observe.metrics import Metrics
from router.state.sessions import Session, SessionStore
from router.types import (
    AnswerFormat,
    AskEvent,
    AskInput,
    BatchOptions,
    Cost,
    DeltaEvent,
    DetectionEvent,
    DoneEvent,
    ProgressEvent,
    RequestKind,
    Route,
)

_HASH_INLINE = 1 << 20  # bytes; larger images are hashed on a worker thread while decoding


@dataclass
class Trace:
    """What the pipeline decided so far, for metrics and logs even when the request fails."""

    kind: RequestKind | None = None
    pool: str = ""

    def commit(self, pool: str) -> None:
        """The answer is committed to `pool`: a failure from here on is counted against it."""
        self.pool = pool


class Pipeline:
    """The router's domain logic; the gRPC servicer and the bulk-job runner both call it."""

    def __init__(
        self,
        config: Config,
        ensemble: DetectionStage,
        dispatcher: Dispatcher,
        sessions: SessionStore,
        metrics: Metrics,
        shared_cache: SharedDetectionCache | None = None,
    ) -> None:
        self.config = config
        self.ensemble = ensemble
        self.shared_cache = shared_cache  # detection.shared_cache (Redis), behind the ensemble's LRU
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
        with tracing.stage("decode", {"roadwork.image.bytes": len(data)}):
            mime = sniff_mime(data) if len(data) <= min(lim.max_image_bytes, _HASH_INLINE) else None
            if mime is not None:  # small enough to hash on the loop (~1 us per KB)
                digest = hashlib.sha256(data).hexdigest()
                if self.ensemble.cache.peek(digest) is not None:
                    return DecodedImage(data=data, sha256=digest, mime=mime, pixels=None)
                if mime == "image/jpeg" and self.ensemble.decodes_jpeg:  # its GPU decodes it: check the header here
                    checked = check_jpeg(data, digest, max_bytes=lim.max_image_bytes, max_pixels=lim.max_image_pixels,
                                         field=field)  # fmt: skip
                    if checked is not None:
                        return checked
            return await self._decode_full(data, field)

    async def _decode_full(self, data: bytes, field: str = "image") -> DecodedImage:
        lim = self.config.limits
        return await asyncio.to_thread(
            decode_image,
            data,
            max_bytes=lim.max_image_bytes,
            max_pixels=lim.max_image_pixels,
            field=field,
            defer_jpeg=self.ensemble.decodes_jpeg,
        )

    async def detect_image(self, image: DecodedImage, field: str = "image") -> Detection:
        with tracing.stage("detection", {"roadwork.image.sha256": image.sha256}) as span:
            result = self.ensemble.lookup(image.sha256) if image.pixels is None else None
            if result is None:
                result = await self._shared_or_detect(image, field)
            tracing.detection_done(span, result, self.ensemble.batch_sizes(image.sha256))
        return self._observed(result)

    def _observed(self, result: Detection) -> Detection:
        self.metrics.detection_cache.labels("hit" if result.cached else "miss").inc()
        if not result.cached:
            self.metrics.detection_seconds.observe(result.latency_ms / 1e3)
        return result

    async def _shared_or_detect(self, image: DecodedImage, field: str) -> Detection:
        """From the replicas' shared cache (when configured), else the ensemble's, then shared."""
        if self.shared_cache is not None:  # another replica may have detected it
            shared = await self.shared_cache.get(image.sha256)
            if shared is not None:
                self.ensemble.cache.put(image.sha256, shared)
                return replace(shared, cached=True, latency_ms=0.0)
        if image.pixels is None:  # evicted since `decode` looked: decode after all
            image = await self._decode_full(image.data, field)
        assert image.pixels is not None
        try:
            result = await self.ensemble.detect(image.pixels, image.data, image.sha256)
        except UndecodableImage as exc:  # a JPEG left to the GPU whose data was corrupt
            raise _undecodable(exc, field) from exc
        except DetectionLost as exc:  # the shared detection process died: it is being restarted
            raise _lost(exc) from exc
        if self.shared_cache is not None and not result.cached and whole(result):  # what the LRU keeps
            await self.shared_cache.put(image.sha256, result)
        return result

    def _validated(self, images: list[bytes], field: str) -> list[DecodedImage | RouterError]:
        """Each image validated (and decoded, unless left to the GPU), or its error (on a worker thread)."""
        lim, defer = self.config.limits, self.ensemble.decodes_jpeg
        out: list[DecodedImage | RouterError] = []
        for data in images:
            try:
                out.append(decode_image(data, max_bytes=lim.max_image_bytes, max_pixels=lim.max_image_pixels,
                                        field=field, defer_jpeg=defer))  # fmt: skip
            except RouterError as exc:
                out.append(exc)
        return out

    async def detect_items(self, images: list[bytes], field: str = "item.image") -> list[ItemOutcome]:
        """Detect-only bulk items as one batch: validated together on a worker thread, then to each
        runner in whole batches (`Ensemble.detect_many`), skipping the per-request path."""
        checked = await asyncio.to_thread(self._validated, images, field)
        ok = [d for d in checked if isinstance(d, DecodedImage) and d.pixels is not None]
        try:
            found = iter(await self.ensemble.detect_many([d.pixels for d in ok if d.pixels], [d.sha256 for d in ok]))
        except DetectionLost as exc:
            raise _lost(exc) from exc
        outcomes = []
        for d in checked:
            if isinstance(d, RouterError):
                outcomes.append(ItemOutcome.failed(d))
                continue
            result = next(found)
            if isinstance(result, UndecodableImage):
                outcomes.append(ItemOutcome.failed(_undecodable(result, field)))
            else:
                outcomes.append(ItemOutcome(detection=self._observed(result)))
        return outcomes

    async def detect(self, data: bytes) -> Detection:
        """Detect RPC: validate the image, run (or reuse) the ensemble."""
        return await self.detect_image(await self.decode(data))

    # -- ask: the stages ----------------------------------------------------------------------

    def _check_question(self, question: str, field: str = "question") -> str:
        q = question.strip()
        if not q:
            raise MissingField(f"{field} is required: ask something about the image", field=field)
        limit = self.config.limits.max_question_chars
        if len(q) > limit:
            raise QuestionTooLong(
                f"{field} is {len(q)} characters; the limit is {limit} (limits.max_question_chars)",
                field=field,
                metadata={"limit": str(limit), "size": str(len(q))},
            )
        return q

    def generation_options(
        self, max_tokens: int, temperature: float | None, field: str = "generation"
    ) -> tuple[int, float]:
        """(max_tokens, temperature) with defaults filled in; out of range names `field` (their message's path)."""
        gen = self.config.generation
        if max_tokens > gen.max_tokens_cap:
            raise OptionOutOfRange(
                f"{field}.max_tokens {max_tokens} is over the server's cap of {gen.max_tokens_cap}",
                field=f"{field}.max_tokens",
                metadata={"max": str(gen.max_tokens_cap)},
            )
        t = gen.temperature if temperature is None else temperature
        if not 0.0 <= t <= 2.0:
            raise OptionOutOfRange(
                f"{field}.temperature {t} is outside [0, 2]",
                field=f"{field}.temperature",
                metadata={"min": "0", "max": "2"},
            )
        return (max_tokens or gen.max_tokens), t

    def session_lock(self, session_id: str) -> asyncio.Lock:
        lock = self._session_locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._session_locks[session_id] = lock
        return lock

    @asynccontextmanager
    async def _session_turn(self, session_id: str) -> AsyncIterator[Session | None]:
        """The session a follow-up continues, read again under its lock (history may have grown
        while this turn waited for it); None for a request outside a session."""
        if not session_id:
            yield None
            return
        session = await self.sessions.get(session_id)
        async with self.session_lock(session.id), self.sessions.turn(session.id):  # this process, then all
            yield await self.sessions.get(session.id)

    async def _detect_turn(self, image: DecodedImage | None, session: Session | None, open_session: bool) -> _Turn:
        """Detection for this turn's image (or the session's, reused), and the session it belongs to."""
        if image is not None:
            detection = await self.detect_image(image)
            ms = detection.latency_ms
            part = _image_part(image, detection)
        elif session is None or not session.image or session.detection is None:
            sid = session.id if session else ""
            message = f"session '{sid}' has no image yet: send one with this question"
            raise MissingField(message, field="image", metadata={"session_id": sid})
        else:
            detection, ms = replace(session.detection, cached=True, latency_ms=0.0), 0.0
            part = ImagePart(session.image, session.image_mime, detection.width, detection.height, session.image_sha256)
        if session is None and open_session:
            with tracing.stage("persist session", {"roadwork.persist": "create"}):
                session = await self.sessions.create(image=image, detection=detection)
        return _Turn(detection, ms, session, part)

    def _history(self, session: Session | None) -> list[tuple[str, str]]:
        turns = self.config.sessions.max_history_turns
        return session.history[-turns:] if session is not None and turns > 0 else []

    def request(
        self,
        question: str,
        detection: Detection,
        image: ImagePart,
        *,
        history: list[tuple[str, str]],
        max_tokens: int,
        temperature: float,
        fmt: AnswerFormat,
        request_id: str = "",
        priority: int = 0,
    ) -> GenerationRequest:
        """The engine request: messages (system + detection summary, history, question, image) and,
        for a verdict, the instruction and the JSON schema to constrain decoding to."""
        verdict = fmt is AnswerFormat.VERDICT
        messages = build_messages(
            system_prompt=self.config.generation.system_prompt,
            detection=detection,
            question=f"{question}\n{INSTRUCTION}" if verdict else question,
            history=history,
            image=image,
            summary=self.config.generation.detections_in_prompt,
        )
        return GenerationRequest(
            messages=messages,
            max_tokens=max_tokens,
            temperature=temperature,
            request_id=request_id,
            priority=priority,
            response_schema=ResponseSchema(SCHEMA_NAME, SCHEMA) if verdict else None,
        )

    async def ask(self, inp: AskInput, trace: Trace | None = None) -> AsyncGenerator[AskEvent, None]:
        """Stream one Ask: a DetectionEvent, progress events, DeltaEvents, then a DoneEvent."""
        trace = trace or Trace()
        start = time.perf_counter()
        if inp.open_session and inp.session_id:
            raise ConflictingFields(
                "open_session opens a new session; a follow-up in session_id's session must not set it",
                field="open_session",
            )
        question = self._check_question(inp.question)
        max_tokens, temperature = self.generation_options(inp.max_tokens, inp.temperature)
        image = await self.decode(inp.image) if inp.image else None
        trace.kind = kind = classify(bulk=False, session_id=inp.session_id, open_session=inp.open_session)
        if not inp.session_id and image is None:
            raise MissingField("image is required unless session_id names a session that has one", field="image")
        async with self._session_turn(inp.session_id) as session:
            turn = await self._detect_turn(image, session, inp.open_session)
            session_id = turn.session.id if turn.session else ""
            yield DetectionEvent(turn.detection, session_id)
            request = self.request(
                question,
                turn.detection,
                turn.image,
                history=self._history(turn.session),
                max_tokens=max_tokens,
                temperature=temperature,
                fmt=inp.format,
                request_id=inp.request_id,
            )
            key = RouteKey(session_id, turn.image.sha256)
            answer: Answer | None = None
            async with aclosing(
                self.generate(
                    kind,
                    request,
                    turn.detection,
                    key=key,
                    strict=inp.strict,
                    start=start,
                    trace=trace,
                    deadline=inp.deadline,
                )
            ) as events:
                async for event in events:
                    if isinstance(event, Answer):
                        answer = event
                    else:
                        yield event
            assert answer is not None
            if turn.session is not None:
                with tracing.stage("persist session", {"roadwork.persist": "turn"}):
                    await self.sessions.record_turn(
                        turn.session, question, answer.text, image=image, detection=turn.detection
                    )
            yield self.done(
                answer, turn.detection, inp.format, session_id=session_id, detection_ms=turn.detection_ms, start=start
            )

    async def generate(
        self,
        kind: RequestKind,
        request: GenerationRequest,
        detection: Detection,
        *,
        key: RouteKey,
        strict: bool,
        start: float,
        trace: Trace,
        deadline: float | None = None,
    ) -> AsyncGenerator[ProgressEvent | DeltaEvent | Answer, None]:
        """Dispatch and stream (progress events, then deltas); degrade to a detections-only answer when
        no engine can answer.
        `start` (a perf_counter value) is when the request began: TTFT counts from it."""
        parts: list[str] = []
        ttft_ms = 0.0
        try:
            committed = self.dispatcher.stream(kind, request, key=key, deadline=deadline, on_commit=trace.commit)
            async with aclosing(committed) as events:
                async for event in events:
                    if isinstance(event, Served):
                        served = event
                        break
                    if not isinstance(event, Delta):
                        yield event  # progress, before the first token
                        continue
                    if not parts:
                        ttft_ms = (time.perf_counter() - start) * 1e3
                    parts.append(event.text)
                    yield DeltaEvent(event.text)
        except Unavailable:
            if strict or parts or not self.config.routing.degrade_to_detections:
                raise  # strict, or part of an engine's answer was already streamed: say it broke
            trace.pool = "detections_only"
            answer = degraded_answer(detection)
            yield DeltaEvent(answer)
            yield Answer(
                text=answer,
                route=Route(kind, "", "detections_only", "", ""),
                usage=Usage(),
                cost=Cost(),
                finish_reason="degraded",
                degraded=True,
                ttft_ms=(time.perf_counter() - start) * 1e3,
                notices=("no engine could answer: this answer comes from the detections alone",),
            )
            return
        trace.pool = served.route.pool
        cost = estimate(served.price, served.finished.usage)
        self._count(kind, served, cost, ttft_ms if parts else None)
        yield Answer(
            text="".join(parts),
            route=served.route,
            usage=served.finished.usage,
            cost=cost,
            finish_reason=served.finished.finish_reason,
            degraded=False,
            ttft_ms=ttft_ms,
            notices=served.finished.notices,
            image=served.image,
        )

    def _count(self, kind: RequestKind, served: Served, cost: Cost, ttft_ms: float | None) -> None:
        """Metrics of one served answer: TTFT, tokens, cost, fallbacks."""
        m, route, usage = self.metrics, served.route, served.finished.usage
        if ttft_ms is not None:
            m.ttft_seconds.labels(kind.value, route.pool).observe(ttft_ms / 1e3)
        m.tokens.labels(route.pool, "prompt").inc(usage.prompt_tokens)
        m.tokens.labels(route.pool, "completion").inc(usage.completion_tokens)
        m.tokens.labels(route.pool, "cached").inc(usage.cached_tokens)
        m.cost_usd.labels(route.pool).inc(cost.total_usd)
        if route.fallback_from:
            m.fallbacks.labels(kind.value, route.pool).inc()

    def done(
        self,
        answer: Answer,
        detection: Detection,
        fmt: AnswerFormat,
        *,
        session_id: str,
        detection_ms: float,
        start: float,
    ) -> DoneEvent:
        """The last event: the answer, its route and costs, the parsed verdict, every notice once."""
        verdict, why = self._verdict(answer, detection) if fmt is AnswerFormat.VERDICT else (None, ())
        return DoneEvent(
            answer=answer.text,
            route=answer.route,
            usage=answer.usage,
            cost=answer.cost,
            finish_reason=answer.finish_reason,
            degraded=answer.degraded,
            session_id=session_id,
            detection_ms=detection_ms,
            ttft_ms=answer.ttft_ms,
            total_ms=(time.perf_counter() - start) * 1e3,
            notices=tuple(dict.fromkeys((*detection.notices, *answer.notices, *why))),
            image=answer.image,
            verdict=verdict,
        )

    def _verdict(self, answer: Answer, detection: Detection) -> tuple[Verdict | None, tuple[str, ...]]:
        """The answer parsed as a verdict and merged with the detection, or a notice saying why not."""
        if answer.degraded:
            return None, ()
        try:
            model = parse_verdict(answer.text)
        except VerdictError as exc:
            return None, (f"the engine's answer is not a valid verdict ({exc}): it is returned as text only",)
        return merge(model, detection, self.config.generation.verdict_model_weight), ()

    # -- bulk items ----------------------------------------------------------------------------

    async def answer_item(self, image_bytes: bytes, question: str, options: BatchOptions) -> ItemOutcome:
        """Run one bulk item (kind BATCH); failures are returned as the item's error, never raised."""
        start = time.perf_counter()
        try:
            image = await self.decode(image_bytes, "item.image")
            detection = await self.detect_image(image, "item.image")
            if options.detect_only:
                return ItemOutcome(detection=detection)
            gen = self.generation_options(options.max_tokens, options.temperature, "options.generation")
            max_tokens, temperature = gen
            part = _image_part(image, detection)
            request = self.request(
                self._check_question(question.strip() or options.default_question, "item.question"),
                detection,
                part,
                history=[],
                max_tokens=max_tokens,
                temperature=temperature,
                fmt=options.format,
                priority=1,
            )
            answer: Answer | None = None
            key = RouteKey(image=image.sha256)
            async with aclosing(
                self.generate(RequestKind.BATCH, request, detection, key=key, strict=False, start=start, trace=Trace())
            ) as events:
                async for event in events:
                    if isinstance(event, Answer):
                        answer = event
            assert answer is not None
            done = self.done(answer, detection, options.format, session_id="", detection_ms=0.0, start=start)
            return ItemOutcome(detection=detection, done=done)
        except RouterError as exc:
            return ItemOutcome.failed(exc)


def _undecodable(exc: UndecodableImage, field: str) -> BadImage:
    return BadImage(f"{field} could not be decoded: {exc}", field=field)


def _lost(exc: DetectionLost) -> DetectionUnavailable:
    return DetectionUnavailable(
        f"detection is unavailable: {exc} (detection.process = shared)", metadata={"stage": "detection"}
    )


def _image_part(image: DecodedImage, detection: Detection) -> ImagePart:
    """A decoded image as the engines take it, with the size the detection read and its digest."""
    return ImagePart(image.data, image.mime, detection.width, detection.height, image.sha256)


@dataclass(frozen=True)
class Answer:
    """What the dispatch stage produced: the whole text, who served it, its usage and cost."""

    text: str
    route: Route
    usage: Usage
    cost: Cost
    finish_reason: str
    degraded: bool
    ttft_ms: float
    notices: tuple[str, ...] = ()
    image: ImageSent | None = None


@dataclass(frozen=True)
class _Turn:
    """The detection stage's result for one turn: the detection, the session, the image to send."""

    detection: Detection
    detection_ms: float
    session: Session | None
    image: ImagePart


@dataclass(frozen=True)
class ItemOutcome:
    """What running a bulk item produced: a detection and answer, or an error."""

    detection: Detection | None = None
    done: DoneEvent | None = None
    error_code: str = ""  # the gRPC status code's name, e.g. "INVALID_ARGUMENT"
    error_message: str = ""
    error_reason: str = ""  # the RouterError's reason, e.g. "IMAGE_UNDECODABLE"

    @classmethod
    def failed(cls, err: RouterError) -> ItemOutcome:
        """The outcome of an item that failed with `err`."""
        return cls(error_code=err.code.name, error_message=err.message, error_reason=err.reason)
