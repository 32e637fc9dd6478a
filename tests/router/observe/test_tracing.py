"""One trace from a Node client through the router to real vLLM (CPU): a real OTLP/gRPC receiver (the
collector service generated in opentelemetry-proto) gets the router's spans and vLLM's, and they join
up: client span -> Ask -> decode, detection (a child per member), dispatch attempt -> engine stream ->
its HTTP POST (aiohttp's instrumentation) -> vLLM's llm_request."""

from __future__ import annotations

import json
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.client_router import REPO, run_client, serve
from tests.conftest import VLLMServer, require_vllm_python

pytestmark = [pytest.mark.node, pytest.mark.slow]
NODE_CLIENT = REPO / "tests" / "node" / "traced_ask.mjs"
EXPORT_SOON = {"OTEL_BSP_SCHEDULE_DELAY": "200"}  # ms: both processes export spans within a moment


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver keeping every span with its service name."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        with self._lock:
            for resource_spans in request.resource_spans:
                attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                service = attrs.get("service.name", "")
                for scope in resource_spans.scope_spans:
                    self.spans.extend((service, span) for span in scope.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def trace(self, trace_id: bytes) -> list[tuple[str, Any]]:
        with self._lock:
            return [(svc, s) for svc, s in self.spans if s.trace_id == trace_id]


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[Collector, str]]:
    servicer, server = Collector(), grpc.server(futures.ThreadPoolExecutor(4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"http://127.0.0.1:{port}"
    server.stop(0)


@pytest.fixture(scope="module")
def traced_vllm(
    collector: tuple[Collector, str], tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VLLMServer]:
    mp = pytest.MonkeyPatch()
    for k, v in EXPORT_SOON.items():
        mp.setenv(k, v)  # the server inherits the environment
    log = tmp_path_factory.mktemp("vllm-otel") / "vllm.log"
    server = VLLMServer(require_vllm_python(), tiny_model, log, extra_args=("--otlp-traces-endpoint", collector[1]))
    mp.undo()
    try:
        yield server.wait()
    finally:
        server.stop()


def _attrs(span: Any) -> dict[str, Any]:
    out = {}
    for a in span.attributes:
        v = a.value
        out[a.key] = getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None
    return out


def _wait_for(collector: Collector, trace_id: bytes, names: set[str], timeout_s: float = 60) -> list[tuple[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        spans = collector.trace(trace_id)
        if names <= {s.name for _, s in spans}:
            return spans
        time.sleep(0.25)
    got = sorted(f"{svc}:{s.name}" for svc, s in collector.trace(trace_id))
    pytest.fail(f"spans {sorted(names)} not all exported within {timeout_s:.0f} s; got {got}")


@pytest.mark.parametrize("http_client", ["lean", "aiohttp"])
def test_one_trace_from_a_node_client_through_the_router_to_vllm(
    collector: tuple[Collector, str], traced_vllm: VLLMServer, tmp_path: Path, http_client: str
) -> None:
    node = shutil.which("node")
    assert node, "Node.js (`node`) is not on PATH"
    servicer, endpoint = collector
    trace_id, client_span = secrets.token_bytes(16), secrets.token_bytes(8)
    traceparent = f"00-{trace_id.hex()}-{client_span.hex()}-01"
    overrides = {  # every pool on the one vLLM (no embedded model to load)
        **{f"ROADWORK__POOLS__{p}__ENGINE": "vllm" for p in ("VLLM", "SGLANG", "LMDEPLOY")},
        **{f"ROADWORK__POOLS__{p}__REPLICAS": json.dumps([traced_vllm.url]) for p in ("VLLM", "SGLANG", "LMDEPLOY")},
        **{f"ROADWORK__POOLS__{p}__METRICS_INTERVAL_S": "0" for p in ("VLLM", "SGLANG", "LMDEPLOY")},
        **{f"ROADWORK__POOLS__{p}__HTTP_CLIENT": http_client for p in ("VLLM", "SGLANG", "LMDEPLOY")},
        "ROADWORK__ROUTING__SINGLE_SHOT": '["vllm"]',
        "ROADWORK__OBSERVE__TRACE_ENDPOINT": endpoint,
        **EXPORT_SOON,
    }
    with serve(tmp_path, **overrides) as (addr, log):
        run_client([node, str(NODE_CLIENT.relative_to(REPO))], addr, log, "node traced client", traceparent)
        names = {"roadwork.v1.RouterService/Ask", "decode", "detection", "dispatch attempt", "engine stream"}
        spans = _wait_for(servicer, trace_id, names | {"llm_request"})
    by_name = {s.name: (svc, s) for svc, s in spans}

    def span(name: str) -> Any:
        return by_name[name][1]

    rpc = span("roadwork.v1.RouterService/Ask")
    assert by_name[rpc.name][0] == "roadwork-router" and rpc.parent_span_id == client_span
    assert rpc.kind == rpc.SPAN_KIND_SERVER
    a = _attrs(rpc)
    assert a["rpc.system"] == "grpc" and a["rpc.method"] == "Ask" and a["rpc.grpc.status_code"] == 0
    assert a["roadwork.kind"] == "single_shot" and a["roadwork.pool"] == "vllm" and a["roadwork.request_id"]
    for child in ("decode", "detection", "dispatch attempt"):
        assert span(child).parent_span_id == rpc.span_id, child
    members = [s for _, s in spans if s.name.startswith("detect ")]
    assert sorted(s.name for s in members) == ["detect yolo11n-roadwork", "detect yolov8n-roadwork"]
    assert all(s.parent_span_id == span("detection").span_id and _attrs(s)["roadwork.vote.status"] for s in members)
    assert all(_attrs(s)["roadwork.detection.batch_size"] == 1 for s in members)  # one client, one image

    attempt = _attrs(span("dispatch attempt"))
    assert attempt["roadwork.pool"] == "vllm" and attempt["roadwork.replica"] == traced_vllm.url
    assert attempt["roadwork.retry"] == 0 and attempt["roadwork.fallback"] is False
    assert attempt["roadwork.breaker"] == "CLOSED"
    stream = span("engine stream")
    assert stream.parent_span_id == span("dispatch attempt").span_id and stream.kind == stream.SPAN_KIND_CLIENT
    s = _attrs(stream)
    assert s["roadwork.engine"] == "vllm" and s["roadwork.ttft_ms"] > 0 and 0 < s["gen_ai.usage.output_tokens"] <= 8
    assert stream.end_time_unix_nano >= span("dispatch attempt").end_time_unix_nano  # it outlives the attempt

    parent = stream
    if http_client == "aiohttp":  # its instrumentation records the POST, the engine stream's child, and
        (parent,) = [s for svc, s in spans if s.parent_span_id == stream.span_id and svc == "roadwork-router"]
        assert parent.kind == parent.SPAN_KIND_CLIENT  # sends its own context as the traceparent
    vllm_svc, llm = by_name["llm_request"]
    assert vllm_svc != "roadwork-router"
    assert llm.parent_span_id == parent.span_id, f"vLLM's span is not the child of {parent.name}"
    assert _attrs(llm).get("gen_ai.request.id")
