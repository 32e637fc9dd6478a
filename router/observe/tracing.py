"""OpenTelemetry traces: one span per stage of a request, W3C `traceparent` in from the client's
metadata and out to the engines (whose own spans then join the trace).

Off unless configured: `tracing.endpoint` or the standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` turn it on (`OTEL_SDK_DISABLED=true` keeps it off); the OTLP/gRPC
exporter, sampler and resource read the other `OTEL_*` variables as usual (`OTEL_SERVICE_NAME`,
`OTEL_TRACES_SAMPLER`, `OTEL_EXPORTER_OTLP_HEADERS`, ...). Off, every span is the API's no-op span."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from detectors.base import Detection

_PROPAGATOR = TraceContextTextMapPropagator()  # W3C traceparent / tracestate
_provider: TracerProvider | None = None
tracer = trace.get_tracer("roadwork-router")
REQUEST_ID: ContextVar[str] = ContextVar("roadwork_request_id", default="")  # the call's x-request-id


def enabled_by(endpoint: str, env: Mapping[str, str] = os.environ) -> bool:
    """Whether tracing is on: an endpoint configured here or in the standard variables."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(endpoint or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def setup(endpoint: str = "", service_name: str = "roadwork-router") -> bool:
    """Install the SDK's provider with a batching OTLP/gRPC exporter, once per process; False when off."""
    global _provider
    if _provider is not None:
        return True
    if not enabled_by(endpoint):
        return False
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    return True


def shutdown() -> None:
    """Export what is buffered and stop the exporter."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def incoming(metadata: Iterable[tuple[str, str | bytes]] | None) -> otel_context.Context:
    """The caller's trace context from gRPC metadata (`traceparent`, `tracestate`)."""
    carrier = {k: v for k, v in metadata or () if isinstance(v, str) and k in ("traceparent", "tracestate")}
    return _PROPAGATOR.extract(carrier)


def outgoing(span: Span | None = None) -> tuple[tuple[str, str], ...]:
    """`traceparent` (and `tracestate`) headers naming `span` (default: the current one) as the parent."""
    carrier: dict[str, str] = {}
    ctx = trace.set_span_in_context(span) if span is not None else None
    _PROPAGATOR.inject(carrier, context=ctx)
    return tuple(carrier.items())


@contextmanager
def rpc_span(method: str, metadata: Iterable[tuple[str, str | bytes]] | None) -> Iterator[Span]:
    """The server span of one RPC, a child of the client's span when its metadata carries one."""
    name = f"roadwork.v1.RouterService/{method}"
    attributes = {"rpc.system": "grpc", "rpc.service": "roadwork.v1.RouterService", "rpc.method": method}
    with tracer.start_as_current_span(
        name, context=incoming(metadata), kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        yield span


def annotate(attributes: Mapping[str, Any], span: Span | None = None) -> None:
    """Set attributes on `span` (default: the current one); None values are left out."""
    span = span or trace.get_current_span()
    span.set_attributes({k: v for k, v in attributes.items() if v is not None})


def finish_rpc(kind: str, pool: str, code: Any) -> None:
    """Record the outcome (a `grpc.StatusCode`) on the current RPC span."""
    span = trace.get_current_span()
    annotate({"roadwork.kind": kind or None, "roadwork.pool": pool or None, "rpc.grpc.status_code": code.value[0]})
    if code.name != "OK":
        span.set_status(Status(StatusCode.ERROR, code.name))


@contextmanager
def stage(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
    """A span for one stage, current while it runs (never across a `yield` of an async generator)."""
    with tracer.start_as_current_span(name, attributes=attributes) as span:
        yield span


def detection_done(span: Span, result: Detection, batch_sizes: Mapping[str, int]) -> None:
    """The detection span's outcome, and a child per member from its vote's timing and the batch its
    image rode in (members run on their own threads; their spans are recorded afterwards, ending when
    the stage did)."""
    annotate({"roadwork.detection.cached": result.cached, "roadwork.detection.probability": result.probability}, span)
    if result.cached:
        return
    end = time.time_ns()
    for vote in result.votes:
        attributes: dict[str, AttributeValue] = {
            "roadwork.detector": vote.detector,
            "roadwork.vote.status": vote.status.name,
            "roadwork.vote.roadwork": vote.roadwork,
            "roadwork.vote.boxes": len(vote.boxes),
        }
        if batch := batch_sizes.get(vote.detector):
            attributes["roadwork.detection.batch_size"] = batch
        start = end - int(vote.latency_ms * 1e6)
        child = tracer.start_span(f"detect {vote.detector}", start_time=start, attributes=attributes)
        if vote.error:
            child.set_status(Status(StatusCode.ERROR, vote.error))
        child.end(end_time=end)


NO_SPAN: Span = trace.INVALID_SPAN


@contextmanager
def dispatch_attempt(pool: str, replica: str, breaker: str, attempt: Mapping[str, Any]) -> Iterator[Span]:
    """One try on one replica, until its first event (or its failure)."""
    attributes = {"roadwork.pool": pool, "roadwork.replica": replica, "roadwork.breaker": breaker, **attempt}
    with stage("dispatch attempt", attributes) as span:
        yield span


@contextmanager
def migration(pool: str, replica: str, kept_tokens: int) -> Iterator[Span]:
    """An answer moving off a replica that failed mid-stream: the continuation's dispatch attempts
    (and its engine stream) are its children; `moved` records where it went."""
    attributes = {"roadwork.pool": pool, "roadwork.migrated_from": replica, "roadwork.kept_tokens": kept_tokens}
    with stage("migration", attributes) as span:
        yield span


def moved(span: Span, pool: str | None, replica: str | None) -> None:
    """The migration's outcome: the pool and replica that continue the answer, or none."""
    if pool is None or replica is None:
        span.set_status(Status(StatusCode.ERROR, "no replica could continue the answer"))
        return
    span.set_attributes({"roadwork.migrated_to_pool": pool, "roadwork.migrated_to": replica})


def engine_stream(engine: str, replica: str) -> Span:
    """The engine stream's span, a CLIENT child of the current one: started now, ended by the caller
    when the stream ends (it outlives the attempt); its context goes to the engine as `traceparent`."""
    attributes = {"roadwork.engine": engine, "roadwork.replica": replica}
    return tracer.start_span("engine stream", kind=SpanKind.CLIENT, attributes=attributes)


def first_token(span: Span) -> None:
    """Mark the first event: `roadwork.ttft_ms` from the stream's start (the SDK span's start time)."""
    started = getattr(span, "start_time", None)
    if isinstance(started, int):
        span.set_attribute("roadwork.ttft_ms", (time.time_ns() - started) / 1e6)
    span.add_event("first token")


def usage_attributes(usage: Any) -> dict[str, int]:
    """An engine's `Usage` as span attributes (the GenAI semantic conventions' names)."""
    return {
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "roadwork.cached_tokens": usage.cached_tokens,
    }


def failed(span: Span, exc: BaseException) -> None:
    """Record a failure on a span that is not current (current spans record their own)."""
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line (`observe.log_format = "json"`): time, level, logger, message, and
    the trace id, span id and request id of the request the line was logged in."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            out["trace_id"], out["span_id"] = format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
        if rid := REQUEST_ID.get():
            out["request_id"] = rid
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def log_as_json() -> None:
    """Format every handler of the root logger as JSON lines."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonLogFormatter())
