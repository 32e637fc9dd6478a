"""The gRPC servicer: protobuf in, domain calls, protobuf out; RouterErrors become google.rpc.Status."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import replace
from typing import TypeVar

import grpc
from google.protobuf.message import DecodeError

from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc
from router.api import convert, error_details
from router.config import Config
from router.errors import ConfigError, DeadlineExceeded, MalformedRequest, MissingField, RouterError, Unauthenticated
from router.flow.pipeline import Pipeline, Trace
from router.observe import tracing
from router.observe.metrics import Metrics
from router.state.jobs import JobStore
from router.state.sessions import SessionStore
from router.types import BatchItemInput, BatchOptions

log = logging.getLogger(__name__)
T = TypeVar("T")
_UNAUTHENTICATED = (
    "missing or wrong bearer token: send metadata 'authorization: Bearer <token>' (server.auth_token_env)"
)


def _retrieved(send: asyncio.Future[None]) -> None:
    """Consume a pipelined send's outcome (a failed one is reported through the handler's own path)."""
    if not send.cancelled():
        send.exception()


def _request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and value:
            return str(value)[:128]
    return uuid.uuid4().hex


def _failure(exc: BaseException, rid: str) -> RouterError:
    """The RouterError a failure reaches the client as; anything else is a bug: INTERNAL, naming `rid`."""
    if isinstance(exc, RouterError):
        return exc
    if isinstance(exc, TimeoutError):
        return DeadlineExceeded("the request's deadline passed before it finished")
    log.exception("request %s failed unexpectedly", rid, exc_info=exc)
    return RouterError(f"internal error in the router; report request id {rid}")


async def _abort(context: grpc.aio.ServicerContext, err: RouterError, rid: str = "") -> None:
    """End the call with the error's code and message, its google.rpc.Status in the trailers
    (`grpc-status-details-bin`), and a retry hint also as the old `retry-after-ms`."""
    code, message, trailing = error_details.trailers(err, rid)
    await context.abort(code, message, trailing)


def auth_token(config: Config) -> str:
    """The bearer token calls must carry ('' = none); a named but empty variable is a config error."""
    name = config.server.auth_token_env
    if not name:
        return ""
    token = os.environ.get(name, "")
    if not token:
        raise ConfigError(f"server.auth_token_env names {name}, which is not set or empty")
    return token


def _authorized(context: grpc.aio.ServicerContext, token: str) -> bool:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return hmac.compare_digest(str(value).encode(), f"Bearer {token}".encode())
    return False


async def _parsed(messages: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """A client stream's messages; one that does not parse (invalid UTF-8 in a string field, corrupt
    wire bytes) is the client's error, INVALID_ARGUMENT, not an internal one."""
    it = aiter(messages)
    while True:
        try:
            message = await anext(it)
        except StopAsyncIteration:
            return
        except DecodeError as exc:
            raise MalformedRequest(f"a request message could not be parsed: {exc}") from exc
        yield message


class _Unparsed:
    """What a unary request whose bytes do not parse turns into (see `register`)."""

    def __init__(self, error: str) -> None:
        self.error = error


def _lenient(parse: Callable[[bytes], object]) -> Callable[[bytes], object]:
    def deserialize(data: bytes) -> object:
        try:
            return parse(data)
        except DecodeError as exc:
            return _Unparsed(str(exc))

    return deserialize


def _checked(behavior: Callable[..., Awaitable[object]]) -> Callable[..., Awaitable[object]]:
    async def call(request: object, context: grpc.aio.ServicerContext) -> object:
        if isinstance(request, _Unparsed):
            await _abort(context, MalformedRequest(f"the request could not be parsed: {request.error}"))
        return await behavior(request, context)

    return call


def register(servicer: RouterServicer, server: grpc.aio.Server) -> None:
    """Add the service like the generated `add_RouterServiceServicer_to_server`, except that a unary
    request whose bytes do not parse (invalid UTF-8 in a string field, corrupt wire bytes) is
    INVALID_ARGUMENT: grpc's own deserializer raising would answer UNKNOWN before any handler runs.
    (Client streams are parsed inside the handler: see `_parsed`.)"""
    service = pb.DESCRIPTOR.services_by_name["RouterService"]
    handlers = {}
    for method in service.methods:
        request_cls = getattr(pb, method.input_type.name)
        serialize = getattr(pb, method.output_type.name).SerializeToString
        behavior = getattr(servicer, method.name)
        if method.client_streaming:
            handlers[method.name] = grpc.stream_unary_rpc_method_handler(behavior, request_cls.FromString, serialize)
            continue
        make = grpc.unary_stream_rpc_method_handler if method.server_streaming else grpc.unary_unary_rpc_method_handler
        handlers[method.name] = make(_checked(behavior), _lenient(request_cls.FromString), serialize)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)


class RouterServicer(pb_grpc.RouterServiceServicer):
    """Implements roadwork.v1.RouterService."""

    def __init__(
        self,
        config: Config,
        pipeline: Pipeline,
        sessions: SessionStore,
        jobs: JobStore,
        metrics: Metrics,
        serving: Callable[[], bool] = lambda: True,
    ):
        self._config = config
        self._serving = serving
        self._pipeline = pipeline
        self._sessions = sessions
        self._jobs = jobs
        self._metrics = metrics
        self._token = auth_token(config)

    async def _begin(self, context: grpc.aio.ServicerContext) -> tuple[str, asyncio.Future[None]]:
        """The request id, and the initial metadata's send (in flight: await it before the next send);
        a call without the configured bearer token ends here, UNAUTHENTICATED."""
        rid = _request_id(context)
        tracing.REQUEST_ID.set(rid)
        tracing.annotate({"roadwork.request_id": rid})
        sent = asyncio.ensure_future(context.send_initial_metadata((("x-request-id", rid),)))
        if self._token and not _authorized(context, self._token):
            await sent
            await _abort(context, Unauthenticated(_UNAUTHENTICATED), rid)
        return rid, sent

    @contextmanager
    def _observed(self, rpc: str, context: grpc.aio.ServicerContext) -> Iterator[None]:
        """While the call runs: counted in flight, and its span (the client's child) current."""
        with self._metrics.in_flight.labels(rpc).track_inprogress():
            with tracing.rpc_span(rpc, context.invocation_metadata()):
                yield

    def _record(self, rpc: str, trace: Trace, code: grpc.StatusCode, start: float) -> None:
        kind = trace.kind.value if trace.kind else ""
        tracing.finish_rpc(kind, trace.pool, code)
        self._metrics.requests.labels(rpc, kind, trace.pool, code.name).inc()
        self._metrics.request_seconds.labels(rpc, kind).observe(time.perf_counter() - start)

    async def _unary(self, rpc: str, context: grpc.aio.ServicerContext, call: Callable[[], Awaitable[T]]) -> T:
        start = time.perf_counter()
        with self._observed(rpc, context):
            rid, sent = await self._begin(context)
            await sent
            try:
                async with asyncio.timeout(context.time_remaining()):
                    result = await call()
            except asyncio.CancelledError:
                self._record(rpc, Trace(), grpc.StatusCode.CANCELLED, start)
                raise
            except Exception as exc:
                err = _failure(exc, rid)
                self._record(rpc, Trace(), err.code, start)
                await _abort(context, err, rid)
            self._record(rpc, Trace(), grpc.StatusCode.OK, start)
            return result

    async def _stream(
        self,
        rpc: str,
        context: grpc.aio.ServicerContext,
        events: Callable[[str], AsyncGenerator[T, None]],
        trace: Trace | None = None,
    ) -> None:
        """Write each event of `events(request_id)` (the call's one id) with `context.write`. Unlike
        yielding from the handler, a client cancel or a passed deadline then raises CancelledError inside
        this call chain, so `aclosing` closes the pipeline and the engine stream at once (aborting
        generation) instead of whenever GC runs.

        Sends are pipelined one deep: the initial metadata and each write run as a task that is
        awaited only before the next send (grpc takes one at a time), so producing the next event
        (for Ask: opening the engine request, reading the next token) overlaps grpc completing the
        previous send, a round trip through its poller thread, instead of waiting for it."""
        start = time.perf_counter()
        with self._observed(rpc, context):
            trace = trace or Trace()
            rid, pending = await self._begin(context)
            try:
                # Our own deadline (grpc cancels a handler late, or only at its next write): when it passes,
                # the chain below is cancelled and closed, which aborts the engine request.
                async with asyncio.timeout(context.time_remaining()), aclosing(events(rid)) as it:
                    async for event in it:
                        await pending
                        pending = asyncio.ensure_future(context.write(event))
                    await pending
            except asyncio.CancelledError:
                self._record(rpc, trace, grpc.StatusCode.CANCELLED, start)
                raise
            except Exception as exc:
                err = _failure(exc, rid)
                self._record(rpc, trace, err.code, start)
                if not pending.done():  # let the send in flight settle before the status goes out (bounded:
                    await asyncio.wait((pending,), timeout=1.0)  # a client that stopped reading blocks it)
                await _abort(context, err, rid)
            finally:
                if not pending.done():
                    pending.cancel()
                pending.add_done_callback(_retrieved)
            self._record(rpc, trace, grpc.StatusCode.OK, start)

    # -- RPCs ------------------------------------------------------------------------------------

    async def Detect(self, request: pb.DetectRequest, context: grpc.aio.ServicerContext) -> pb.DetectResponse:
        async def call() -> pb.DetectResponse:
            return pb.DetectResponse(detection=convert.detection_pb(await self._pipeline.detect(request.image)))

        return await self._unary("Detect", context, call)

    async def Ask(self, request: pb.AskRequest, context: grpc.aio.ServicerContext) -> None:
        trace = Trace()

        async def events(rid: str) -> AsyncGenerator[pb.AskResponse, None]:
            inp = convert.ask_input(request, rid)
            remaining = context.time_remaining()
            if remaining is not None:
                inp = replace(inp, deadline=time.monotonic() + remaining)
            async with aclosing(self._pipeline.ask(inp, trace)) as it:
                async for event in it:
                    yield convert.ask_event_pb(event)

        await self._stream("Ask", context, events, trace)

    async def CreateSession(
        self, request: pb.CreateSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateSessionResponse:
        async def call() -> pb.CreateSessionResponse:
            image = detection = None
            if request.image:
                image = await self._pipeline.decode(request.image)
                detection = await self._pipeline.detect_image(image)
            s = await self._sessions.create(ttl_s=convert.session_ttl(request), image=image, detection=detection)
            return pb.CreateSessionResponse(
                session=pb.Session(
                    session_id=s.id,
                    image_sha256=s.image_sha256,
                    turns=len(s.history),
                    created_at=convert.timestamp(s.created),
                    expires_at=convert.timestamp(s.expires),
                )
            )

        return await self._unary("CreateSession", context, call)

    async def CloseSession(
        self, request: pb.CloseSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CloseSessionResponse:
        async def call() -> pb.CloseSessionResponse:
            if not request.session_id:
                raise MissingField("session_id is required", field="session_id")
            await self._sessions.close(request.session_id)
            return pb.CloseSessionResponse()

        return await self._unary("CloseSession", context, call)

    async def SubmitBatch(
        self, request_iterator: AsyncIterator[pb.SubmitBatchRequest], context: grpc.aio.ServicerContext
    ) -> pb.SubmitBatchResponse:
        async def call() -> pb.SubmitBatchResponse:
            stream = _parsed(request_iterator)
            first = await anext(stream, None)
            has_options = first is not None and first.WhichOneof("payload") == "options"
            options = convert.batch_options(first.options) if first is not None and has_options else BatchOptions()
            if not options.detect_only:  # out-of-range options fail the submit, not every item one by one
                self._pipeline.generation_options(options.max_tokens, options.temperature, "options.generation")

            async def items() -> AsyncGenerator[BatchItemInput, None]:
                if first is not None and not has_options:
                    yield self._item(first)
                async for msg in stream:
                    yield self._item(msg)

            lim = self._config.limits
            view = await self._jobs.submit(
                options, items(), max_items=lim.max_batch_items, max_image_bytes=lim.max_image_bytes
            )
            return pb.SubmitBatchResponse(job=convert.job_pb(view))

        return await self._unary("SubmitBatch", context, call)

    @staticmethod
    def _item(msg: pb.SubmitBatchRequest) -> BatchItemInput:
        which = msg.WhichOneof("payload")
        if which == "item":
            return convert.batch_item(msg.item)
        if which == "options":
            raise MalformedRequest("options must be the first message of SubmitBatch, and sent once", field="options")
        raise MalformedRequest("each SubmitBatch message must set options or item", field="payload")

    async def GetBatch(self, request: pb.GetBatchRequest, context: grpc.aio.ServicerContext) -> pb.GetBatchResponse:
        async def call() -> pb.GetBatchResponse:
            return pb.GetBatchResponse(job=convert.job_pb(await self._jobs.get(request.job_id)))

        return await self._unary("GetBatch", context, call)

    async def ListBatches(
        self, request: pb.ListBatchesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListBatchesResponse:
        async def call() -> pb.ListBatchesResponse:
            page_size, after, state = convert.list_batches(request)
            views, cursor = await self._jobs.list_jobs(page_size, after, state)
            return pb.ListBatchesResponse(
                jobs=[convert.job_pb(v) for v in views], next_page_token=convert.page_token(cursor, request.state)
            )

        return await self._unary("ListBatches", context, call)

    async def WatchBatch(self, request: pb.WatchBatchRequest, context: grpc.aio.ServicerContext) -> None:
        async def events(_rid: str) -> AsyncGenerator[pb.WatchBatchResponse, None]:
            async with aclosing(self._jobs.watch(request.job_id)) as views:
                async for view in views:
                    yield pb.WatchBatchResponse(job=convert.job_pb(view))

        await self._stream("WatchBatch", context, events)

    async def ListBatchResults(self, request: pb.ListBatchResultsRequest, context: grpc.aio.ServicerContext) -> None:
        async def events(_rid: str) -> AsyncGenerator[pb.ListBatchResultsResponse, None]:
            if request.follow:
                async with aclosing(self._jobs.follow_results(request.job_id, request.offset, request.limit)) as rs:
                    async for r in rs:
                        yield pb.ListBatchResultsResponse(result=convert.item_result_pb(r))
                return
            for r in await self._jobs.results(request.job_id, request.offset, request.limit, finished_only=True):
                yield pb.ListBatchResultsResponse(result=convert.item_result_pb(r))

        await self._stream("ListBatchResults", context, events)

    async def CancelBatch(
        self, request: pb.CancelBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelBatchResponse:
        async def call() -> pb.CancelBatchResponse:
            return pb.CancelBatchResponse(job=convert.job_pb(await self._jobs.cancel(request.job_id)))

        return await self._unary("CancelBatch", context, call)

    async def GetStatus(self, request: pb.GetStatusRequest, context: grpc.aio.ServicerContext) -> pb.GetStatusResponse:
        async def call() -> pb.GetStatusResponse:
            return convert.status_pb(self._pipeline.dispatcher.pools, self._config.routing, self._serving())

        return await self._unary("GetStatus", context, call)
