"""The public API over a real gRPC server on loopback: Detect, Ask, sessions, health, reflection."""

from __future__ import annotations

import io
from collections.abc import AsyncGenerator

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from PIL import Image

from engines.base import GenerationEvent, GenerationRequest
from engines.embedded import EmbeddedEngine
from engines.errors import EngineBadRequest
from router._proto.roadwork.v1 import router_pb2 as pb
from tests.conftest import ErrorDetails, RunningRouter, ask, rpc_error


def _png(w: int = 64, h: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 120, 30)).save(buf, "PNG")
    return buf.getvalue()


def _code(exc: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return exc.value.code()  # type: ignore[attr-defined,no-any-return]


# -- Detect ------------------------------------------------------------------------------------


def test_detect_returns_probability_votes_and_digest(router: RunningRouter, sample_jpeg: bytes) -> None:
    d = router.stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=60).detection
    assert 0.0 <= d.roadwork_probability <= 1.0
    assert d.verdict == (pb.VERDICT_ROADWORK if d.roadwork_probability > 0.5 else pb.VERDICT_NO_ROADWORK)
    assert [v.detector for v in d.votes] == ["yolo11n-roadwork", "yolov8n-roadwork"]
    assert all(v.status == pb.VOTE_STATUS_OK for v in d.votes)
    assert len(d.image_sha256) == 64 and (d.image_width, d.image_height) == (640, 480)
    assert any("synthetic scenes" in n for n in d.notices)  # demo weights are said plainly


def test_demo_detectors_find_the_roadwork_in_the_sample(router: RunningRouter, sample_jpeg: bytes) -> None:
    d = router.stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=60).detection
    assert d.verdict == pb.VERDICT_ROADWORK and d.roadwork_probability > 0.5
    found = {b.class_name for v in d.votes for b in v.boxes if b.roadwork_evidence}
    assert "cone" in found, found
    for v in d.votes:
        for b in v.boxes:
            assert 0 <= b.x1 < b.x2 <= 640 and 0 <= b.y1 < b.y2 <= 480


def test_detect_cache_hit_on_same_image(router: RunningRouter) -> None:
    img = _png(80, 60)
    first = router.stub.Detect(pb.DetectRequest(image=img), timeout=60).detection
    second = router.stub.Detect(pb.DetectRequest(image=img), timeout=60).detection
    assert not first.cached and second.cached
    assert second.roadwork_probability == first.roadwork_probability


def test_detect_accepts_png_and_webp(router: RunningRouter) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (50, 40), (10, 20, 30)).save(buf, "WEBP")
    for data in (_png(), buf.getvalue()):
        d = router.stub.Detect(pb.DetectRequest(image=data), timeout=60).detection
        assert d.image_width in (64, 50)


@pytest.mark.parametrize(
    ("image", "code", "words"),
    [
        (b"", grpc.StatusCode.INVALID_ARGUMENT, "empty"),
        (b"not an image at all", grpc.StatusCode.INVALID_ARGUMENT, "could not be decoded"),
        (None, grpc.StatusCode.INVALID_ARGUMENT, "truncated"),  # a truncated JPEG
        (b"GIF89a" + b"\x00" * 64, grpc.StatusCode.INVALID_ARGUMENT, "JPEG, PNG or WebP"),
    ],
)
def test_detect_bad_images(
    router: RunningRouter, sample_jpeg: bytes, image: bytes | None, code: grpc.StatusCode, words: str
) -> None:
    data = sample_jpeg[: len(sample_jpeg) // 3] if image is None else image
    with pytest.raises(grpc.RpcError) as exc:
        router.stub.Detect(pb.DetectRequest(image=data), timeout=60)
    assert _code(exc) == code, exc.value.details()  # type: ignore[attr-defined]
    assert words in exc.value.details()  # type: ignore[attr-defined]
    assert "object at 0x" not in exc.value.details()  # type: ignore[attr-defined]


def test_gif_is_rejected_with_format_name(router: RunningRouter) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "GIF")
    with pytest.raises(grpc.RpcError) as exc:
        router.stub.Detect(pb.DetectRequest(image=buf.getvalue()), timeout=60)
    assert _code(exc) == grpc.StatusCode.INVALID_ARGUMENT
    assert "GIF" in exc.value.details()  # type: ignore[attr-defined]


def test_image_over_pixel_limit(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.conftest import make_config

    cfg = make_config(tmp_path_factory.mktemp("limits"), ROADWORK__LIMITS__MAX_IMAGE_PIXELS="1000",
                      ROADWORK__LIMITS__MAX_IMAGE_BYTES="5000")  # fmt: skip
    r = RunningRouter(cfg)  # no warm-up needed: limits are checked before detection
    try:
        with pytest.raises(grpc.RpcError) as exc:
            r.stub.Detect(pb.DetectRequest(image=_png(64, 48)), timeout=60)
        assert _code(exc) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_image_pixels" in exc.value.details()  # type: ignore[attr-defined]
        big = io.BytesIO()
        Image.effect_noise((60, 30), 64).convert("RGB").save(big, "PNG")
        with pytest.raises(grpc.RpcError) as exc:
            r.stub.Detect(pb.DetectRequest(image=big.getvalue()), timeout=60)
        assert _code(exc) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_image_bytes" in exc.value.details()  # type: ignore[attr-defined]
    finally:
        r.stop()


# -- Ask -----------------------------------------------------------------------------------------


def test_ask_streams_detection_deltas_then_done(router: RunningRouter, sample_jpeg: bytes) -> None:
    events = ask(
        router.stub, image=sample_jpeg, question="Is there roadwork?", generation=pb.GenerationOptions(max_tokens=12)
    )
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[:2] == ["detected", "progress"] and kinds[-1] == "done"
    assert set(kinds[2:-1]) <= {"delta"} and kinds.count("done") == 1
    assert events[1].progress.dispatched == pb.DispatchedProgress(pool="vllm", replica="embedded", attempt=1)
    done = events[-1].done
    assert done.answer == "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta")
    assert done.route.kind == pb.REQUEST_KIND_SINGLE_SHOT
    assert done.route.pool == "vllm" and done.route.engine == pb.ENGINE_EMBEDDED and done.route.replica == "embedded"
    assert done.usage.prompt_tokens > 0 and 0 < done.usage.completion_tokens <= 12
    assert done.cost.total_usd == pytest.approx(done.cost.prompt_usd + done.cost.completion_usd)
    assert done.cost.total_usd > 0  # the quick-start price table has example prices
    assert done.session_id == "" and not done.degraded
    assert done.total_time.ToNanoseconds() >= done.time_to_first_token.ToNanoseconds() > 0
    assert any("demo vision-language model" in n for n in done.notices)
    assert (done.image.width, done.image.height, done.image.image_tokens) == (448, 336, 192)  # the image reached it
    assert done.answer.startswith("Yes, there is roadwork")  # the sample shows a work zone


def test_in_flight_counts_a_streaming_ask_until_it_ends(router: RunningRouter, sample_jpeg: bytes) -> None:
    in_flight = lambda: router.app.metrics.registry.get_sample_value("roadwork_in_flight", {"rpc": "Ask"})  # noqa: E731
    before = in_flight() or 0.0
    call = router.stub.Ask(
        pb.AskRequest(image=sample_jpeg, question="cones?", generation=pb.GenerationOptions(max_tokens=4)), timeout=60
    )
    next(call)  # the detected event: the call is in its handler
    assert in_flight() == before + 1
    list(call)
    assert in_flight() == before


def test_ask_echoes_request_id(router: RunningRouter, sample_jpeg: bytes) -> None:
    call = router.stub.Ask(
        pb.AskRequest(image=sample_jpeg, question="cones?", generation=pb.GenerationOptions(max_tokens=2)),
        metadata=(("x-request-id", "abc-123"),),
        timeout=60,
    )
    list(call)
    assert ("x-request-id", "abc-123") in list(call.initial_metadata())


def test_one_request_id_per_call_reaches_the_reply_the_engine_and_the_error(
    router: RunningRouter, sample_jpeg: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    async def rejecting(self: EmbeddedEngine, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        seen.append(request.request_id)
        raise EngineBadRequest("prompt too long (test)")
        yield  # an async generator, as the engine's own  # type: ignore[unreachable]

    monkeypatch.setattr(EmbeddedEngine, "generate", rejecting)
    call = router.stub.Ask(pb.AskRequest(image=sample_jpeg, question="cones?"), timeout=60)  # no client id
    err = rpc_error(lambda: list(call))
    sent = dict(call.initial_metadata())["x-request-id"]
    assert sent and seen == [sent]
    details = ErrorDetails(err)
    assert details.reason == "ENGINE_REJECTED" and details.info.metadata["request_id"] == sent


def test_session_follow_up_reuses_image_and_detections(router: RunningRouter, sample_jpeg: bytes) -> None:
    opts = pb.GenerationOptions(max_tokens=6)
    first = ask(router.stub, image=sample_jpeg, question="Is it active?", open_session=True, generation=opts)
    sid = first[0].detected.session_id
    assert sid and first[-1].done.session_id == sid
    assert first[-1].done.route.kind == pb.REQUEST_KIND_MULTI_TURN and first[-1].done.route.pool == "sglang"
    follow = ask(router.stub, question="How many lanes?", session_id=sid, generation=opts)
    det = follow[0].detected
    assert det.session_id == sid and det.detection.cached
    assert det.detection.image_sha256 == first[0].detected.detection.image_sha256
    done = follow[-1].done
    assert done.route.kind == pb.REQUEST_KIND_MULTI_TURN
    # The follow-up's prompt carries the first turn: it is longer than the first prompt.
    assert done.usage.prompt_tokens > first[-1].done.usage.prompt_tokens


def test_create_and_close_session(router: RunningRouter, sample_jpeg: bytes) -> None:
    s = router.stub.CreateSession(
        pb.CreateSessionRequest(image=sample_jpeg, ttl=Duration(seconds=60)), timeout=60
    ).session
    assert s.session_id and len(s.image_sha256) == 64 and s.turns == 0
    assert 59 <= s.expires_at.seconds - s.created_at.seconds <= 61
    events = ask(
        router.stub, question="Any workers?", session_id=s.session_id, generation=pb.GenerationOptions(max_tokens=3)
    )
    assert events[0].detected.detection.cached
    router.stub.CloseSession(pb.CloseSessionRequest(session_id=s.session_id), timeout=10)
    with pytest.raises(grpc.RpcError) as exc:
        ask(router.stub, question="still there?", session_id=s.session_id)
    assert _code(exc) == grpc.StatusCode.FAILED_PRECONDITION and "closed" in exc.value.details()  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as exc:
        router.stub.CloseSession(pb.CloseSessionRequest(session_id="s_unknown"), timeout=10)
    assert _code(exc) == grpc.StatusCode.NOT_FOUND


def test_session_without_image_needs_one(router: RunningRouter, sample_jpeg: bytes) -> None:
    s = router.stub.CreateSession(pb.CreateSessionRequest(), timeout=10).session
    with pytest.raises(grpc.RpcError) as exc:
        ask(router.stub, question="what is here?", session_id=s.session_id)
    assert _code(exc) == grpc.StatusCode.INVALID_ARGUMENT and "no image" in exc.value.details()  # type: ignore[attr-defined]
    events = ask(router.stub, image=sample_jpeg, question="now?", session_id=s.session_id,
                 generation=pb.GenerationOptions(max_tokens=2))  # fmt: skip
    assert events[-1].done.session_id == s.session_id


def test_expired_session(tmp_path_factory: pytest.TempPathFactory, sample_jpeg: bytes) -> None:
    import time

    from tests.conftest import make_config

    r = RunningRouter(make_config(tmp_path_factory.mktemp("ttl"), ROADWORK__SESSIONS__TTL_S="1")).wait_ready()
    try:
        s = r.stub.CreateSession(pb.CreateSessionRequest(), timeout=10).session
        time.sleep(1.5)
        with pytest.raises(grpc.RpcError) as exc:
            ask(r.stub, image=sample_jpeg, question="hello?", session_id=s.session_id)
        assert _code(exc) == grpc.StatusCode.FAILED_PRECONDITION and "expired" in exc.value.details()  # type: ignore[attr-defined]
    finally:
        r.stop()


@pytest.mark.parametrize(
    ("kw", "code", "words"),
    [
        ({"question": "no image?"}, grpc.StatusCode.INVALID_ARGUMENT, "image is required"),
        ({"image": b"x", "question": ""}, grpc.StatusCode.INVALID_ARGUMENT, "question is required"),
        ({"image": b"x", "question": "   "}, grpc.StatusCode.INVALID_ARGUMENT, "question is required"),
        ({"image": b"x", "question": "q" * 5000}, grpc.StatusCode.INVALID_ARGUMENT, "max_question_chars"),
        ({"question": "q", "session_id": "s_nope"}, grpc.StatusCode.NOT_FOUND, "does not exist"),
        ({"image": b"garbage", "question": "q"}, grpc.StatusCode.INVALID_ARGUMENT, "could not be decoded"),
        (
            {"image": b"x", "question": "q", "generation": pb.GenerationOptions(max_tokens=100000)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "max_tokens",
        ),
        (
            {"image": b"x", "question": "q", "generation": pb.GenerationOptions(temperature=9)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "temperature",
        ),
    ],
)
def test_ask_bad_requests(router: RunningRouter, kw: dict[str, object], code: grpc.StatusCode, words: str) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        ask(router.stub, **kw)
    assert _code(exc) == code, exc.value.details()  # type: ignore[attr-defined]
    assert words in exc.value.details()  # type: ignore[attr-defined]


def test_server_survives_bad_requests(router: RunningRouter, sample_jpeg: bytes) -> None:
    for _ in range(20):
        with pytest.raises(grpc.RpcError):
            router.stub.Detect(pb.DetectRequest(image=b"\xff\xd8\xff" + b"\x00" * 100), timeout=10)
    assert router.stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=60).detection.image_sha256


# -- health, reflection, metrics ---------------------------------------------------------------------


def test_health_turns_serving_after_warmup(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.conftest import make_config

    r = RunningRouter(make_config(tmp_path_factory.mktemp("health")))
    try:
        stub = health_pb2_grpc.HealthStub(r.channel)
        service = "roadwork.v1.RouterService"
        status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
        # Warm-up builds a model and loads the detector: it takes far longer than this first check.
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        r.wait_ready()
        assert stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status == (
            health_pb2.HealthCheckResponse.SERVING
        )
        assert stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status == (
            health_pb2.HealthCheckResponse.SERVING
        )
    finally:
        r.stop()


def test_reflection_lists_services(router: RunningRouter) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(router.channel)
    responses = list(
        stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    )
    names = {s.name for s in responses[0].list_services_response.service}
    assert {"roadwork.v1.RouterService", "grpc.health.v1.Health"} <= names


def test_reflection_serves_the_proto_comments(router: RunningRouter) -> None:
    """What `grpcurl describe` reads: router.proto's descriptor with its comments (source_code_info)."""
    stub = reflection_pb2_grpc.ServerReflectionStub(router.channel)
    ask = reflection_pb2.ServerReflectionRequest(file_containing_symbol="roadwork.v1.BatchJob")
    (reply,) = stub.ServerReflectionInfo(iter([ask]), timeout=10)
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(b) for b in reply.file_descriptor_response.file_descriptor_proto
    ]
    proto = next(f for f in files if f.name == "roadwork/v1/router.proto")
    assert {"google/protobuf/duration.proto", "google/rpc/status.proto"} <= {f.name for f in files}
    job = next(i for i, m in enumerate(proto.message_type) if m.name == "BatchJob")
    pending = next(i for i, f in enumerate(proto.message_type[job].field) if f.name == "pending")
    comments = {tuple(loc.path): loc.leading_comments for loc in proto.source_code_info.location}
    assert "waiting and running ones both" in comments[(4, job, 2, pending)]
    assert comments[(6, 0)].startswith(" The router.")  # the service's own comment


def test_metrics_endpoint(tmp_path_factory: pytest.TempPathFactory, sample_jpeg: bytes) -> None:
    from tests.conftest import free_port, make_config

    port = free_port()
    r = RunningRouter(make_config(tmp_path_factory.mktemp("m"), ROADWORK__SERVER__METRICS_PORT=str(port))).wait_ready()
    try:
        ask(r.stub, image=sample_jpeg, question="metrics?", generation=pb.GenerationOptions(max_tokens=3))
        with pytest.raises(grpc.RpcError):
            r.stub.Detect(pb.DetectRequest(image=b""), timeout=10)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'roadwork_requests_total{code="OK",kind="single_shot",pool="vllm",rpc="Ask"} 1.0' in text
        assert 'roadwork_requests_total{code="INVALID_ARGUMENT",kind="",pool="",rpc="Detect"} 1.0' in text
        assert "roadwork_ttft_seconds_bucket" in text and "roadwork_detection_seconds_count" in text
        assert 'roadwork_tokens_total{pool="vllm",type="completion"}' in text
        assert 'roadwork_cost_usd_total{pool="vllm"}' in text
    finally:
        r.stop()


def test_status_lists_a_shared_replica_once_and_routing_as_typed_rules(router: RunningRouter) -> None:
    status = router.stub.GetStatus(pb.GetStatusRequest(), timeout=10)
    pools = [p.name for p in status.pools]
    # The quick-start config: every pool runs on the one embedded engine, so it is one replica.
    assert [(r.name, list(r.pools)) for r in status.replicas] == [("embedded", pools)]
    assert all(list(p.replicas) == ["embedded"] and p.engine == pb.ENGINE_EMBEDDED for p in status.pools)
    assert all(p.policy != pb.ROUTING_POLICY_UNSPECIFIED for p in status.pools)
    assert [r.kind for r in status.routing] == [
        pb.REQUEST_KIND_MULTI_TURN,
        pb.REQUEST_KIND_BATCH,
        pb.REQUEST_KIND_SINGLE_SHOT,
    ]
    assert list(status.routing[2].pools) == ["vllm", "sglang", "lmdeploy"]
