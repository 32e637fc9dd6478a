"""The router's own share of a request's latency, read from its OpenTelemetry spans.

`bench.overhead --spans` starts `Receiver` (an OTLP/gRPC trace receiver, the collector service of
opentelemetry-proto) and points each router at it. Per Ask, `router_share` takes the RPC span and the
engine stream that answered it: **before** = the RPC's start to the engine stream's start (decode,
detection or its cache, prompt, admission, dispatch), **after** = the stream's end to the RPC's end
(the last reply written). What lies between is the engine's (and the HTTP hop's) time. Tracing costs
some of what it measures: compare routers with it off, and read these figures for where time goes.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Iterable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

EXPORT_SOON = {"OTEL_BSP_SCHEDULE_DELAY": "200"}  # ms: routers export their spans within a moment


@dataclass(frozen=True)
class Span:
    """What the share needs of one received span."""

    service: str
    name: str
    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    start_ns: int
    end_ns: int


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver keeping every span with its service name."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        got = []
        for resource_spans in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attrs.get("service.name", "")
            for scope in resource_spans.scope_spans:
                for s in scope.spans:
                    got.append(Span(service, s.name, s.trace_id, s.span_id, s.parent_span_id,
                                    s.start_time_unix_nano, s.end_time_unix_nano))  # fmt: skip
        with self._lock:
            self.spans.extend(got)
        return trace_service_pb2.ExportTraceServiceResponse()

    def start(self) -> str:
        """Serve on a free loopback port; returns the endpoint for `observe.trace_endpoint`."""
        self._server = grpc.server(futures.ThreadPoolExecutor(4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)  # type: ignore[no-untyped-call]
        port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(0)

    def received(self) -> list[Span]:
        with self._lock:
            return list(self.spans)


def _ms(ns: Iterable[int]) -> dict[str, Any]:
    values = sorted(n / 1e6 for n in ns)
    if not values:
        return {"p50_ms": None, "p90_ms": None}
    return {"p50_ms": round(statistics.median(values), 3), "p90_ms": round(values[int(0.9 * (len(values) - 1))], 3)}


_STEPS = (  # where `before` goes: consecutive marks of one Ask, (span, start or end)
    ("to decode", ("decode", "start")),
    ("decode", ("decode", "end")),
    ("to detection", ("detection", "start")),
    ("detection", ("detection", "end")),
    ("to dispatch", ("dispatch attempt", "start")),
    ("to engine stream", ("engine stream", "start")),
)


def _steps(rpc: Span, trace: list[Span], stream: Span) -> dict[str, int] | None:
    """The time from each mark to the next, from the RPC's start to the answering stream's (None: a mark is missing)."""
    first: dict[str, Span] = {}
    for s in sorted(trace, key=lambda s: s.start_ns):
        first.setdefault(s.name, s)
    first["engine stream"] = stream
    out: dict[str, int] = {}
    at = rpc.start_ns
    for step, (name, edge) in _STEPS:
        if name not in first:
            return None
        mark = first[name].start_ns if edge == "start" else first[name].end_ns
        out[step], at = mark - at, mark
    return out


def router_share(spans: list[Span], service: str, window_ns: tuple[int, int]) -> dict[str, Any]:
    """Medians of `before`, `after` and the steps of `before` over the Asks of `service` that started in
    the window."""
    by_trace: dict[bytes, list[Span]] = {}
    for s in spans:
        if s.service == service:
            by_trace.setdefault(s.trace_id, []).append(s)
    before: list[int] = []
    after: list[int] = []
    steps: dict[str, list[int]] = {step: [] for step, _mark in _STEPS}
    for trace in by_trace.values():
        rpcs = [s for s in trace if s.name.endswith("RouterService/Ask")]
        streams = [s for s in trace if s.name == "engine stream"]
        if len(rpcs) != 1 or not streams or not window_ns[0] <= rpcs[0].start_ns < window_ns[1]:
            continue
        rpc, stream = rpcs[0], max(streams, key=lambda s: s.start_ns)  # the stream that answered
        before.append(stream.start_ns - rpc.start_ns)
        after.append(rpc.end_ns - stream.end_ns)
        for step, ns in (_steps(rpc, trace, stream) or {}).items():
            steps[step].append(ns)
    return {
        "asks": len(before),
        "before_engine": _ms(before),
        "after_engine": _ms(after),
        "steps_before": {step: _ms(ns) for step, ns in steps.items()},
    }
