"""Machine-readable errors (issue 14): every error carries a google.rpc.Status in
`grpc-status-details-bin` with an ErrorInfo (reason, domain, metadata), a RetryInfo with a retry
hint, and a BadRequest naming the field at fault; read with grpcio-status from a real gRPC server on
loopback, as a client would. Reasons are kept in step with the proto enum ErrorReason."""

from __future__ import annotations

import ast
import io
import re
import struct
import time
import zlib
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2
from PIL import Image

from router import errors
from router._proto.roadwork.v1 import router_pb2 as pb
from router.api.error_details import DOMAIN, MAX_MESSAGE_BYTES, MAX_METADATA_CHARS, item_status_pb, status_pb
from tests.conftest import ROOT, ErrorDetails, RunningRouter, make_config, rpc_error

PREFIX = "ERROR_REASON_"
MAX_IMAGE_BYTES = 200_000  # the sample JPEG (99 KB) fits
MAX_IMAGE_PIXELS = 400_000  # the sample (640x480) fits
CONTEXT_TOKENS = 250  # the sample takes 192 image tokens: max_tokens 1 fits, 100 does not


def _classes() -> list[type[errors.RouterError]]:
    return [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.RouterError)]


def _leaves() -> list[type[errors.RouterError]]:
    """The error classes with a reason of their own (the four groups have none)."""
    return [c for c in _classes() if "reason" in vars(c)]


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 30)).save(buf, "PNG")
    return buf.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height; its pixel data is junk (never decoded)."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"junk") + chunk(b"IEND", b"")


# -- the reasons: errors.py, its tree and the proto enum agree ------------------------------------------


def test_every_reason_is_in_the_proto_enum_and_every_enum_value_is_a_reason() -> None:
    ours = {c.reason for c in _leaves()}
    names = set(pb.ErrorReason.keys())
    assert all(name.startswith(PREFIX) for name in names)
    assert ours == {name.removeprefix(PREFIX) for name in names} - {"UNSPECIFIED"}
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]+[A-Z0-9]", r) and len(r) <= 63 for r in ours)  # ErrorInfo's rule


def test_the_tree_in_errors_docstring_names_each_class_with_its_code_and_reason() -> None:
    doc = errors.__doc__ or ""
    for cls in _classes():
        line = next((ln for ln in doc.splitlines() if re.search(rf"\b{cls.__name__}\b", ln)), "")
        assert line, f"{cls.__name__} is not in the tree"
        if "reason" in vars(cls):
            assert re.search(rf"\b{cls.reason}\b", line), f"{cls.__name__}: the tree does not say {cls.reason}"
        if "code" in vars(cls):
            assert f"({cls.code.name})" in line, f"{cls.__name__}: the tree does not say {cls.code.name}"


def _constructed_without_reason(source: str) -> list[str]:
    """Error classes that `source` builds although they have no reason of their own."""
    groups = {c.__name__ for c in _classes()} - {c.__name__ for c in _leaves()}
    return [
        f"line {node.lineno}: {node.func.id}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in groups
    ]


def test_the_router_raises_only_errors_with_a_reason_of_their_own() -> None:
    assert _constructed_without_reason("raise InvalidRequest('x')\nraise MissingField('y')") == [
        "line 1: InvalidRequest"
    ]
    found = {
        str(path.relative_to(ROOT)): bad
        for path in sorted((ROOT / "router").rglob("*.py"))
        if "_proto" not in path.parts and (bad := _constructed_without_reason(path.read_text()))
    }
    assert not found, f"raise a leaf of router/errors.py, not a group: {found}"


# -- the mapping, without a server ------------------------------------------------------------------------


def _unpacked(status: object, kind: type) -> list[object]:
    out = []
    for detail in status.details:  # type: ignore[attr-defined]
        if detail.Is(kind.DESCRIPTOR):
            msg = kind()
            detail.Unpack(msg)
            out.append(msg)
    return out


def test_invalid_argument_names_its_field_in_bad_request_other_codes_in_metadata() -> None:
    invalid = status_pb(errors.OptionOutOfRange("too hot", field="generation.temperature"), "rid")
    (bad,) = _unpacked(invalid, error_details_pb2.BadRequest)
    assert [(v.field, v.description, v.reason) for v in bad.field_violations] == [  # type: ignore[attr-defined]
        ("generation.temperature", "too hot", "OPTION_OUT_OF_RANGE")
    ]
    (info,) = _unpacked(invalid, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain, dict(info.metadata)) == ("OPTION_OUT_OF_RANGE", DOMAIN, {"request_id": "rid"})  # type: ignore[attr-defined]
    missing = status_pb(errors.SessionNotFound("gone", field="session_id", metadata={"session_id": "s_1"}))
    assert not _unpacked(missing, error_details_pb2.BadRequest)
    (info,) = _unpacked(missing, error_details_pb2.ErrorInfo)
    assert dict(info.metadata) == {"field": "session_id", "session_id": "s_1"}  # type: ignore[attr-defined]
    assert (missing.code, missing.message) == (grpc.StatusCode.NOT_FOUND.value[0], "gone")


def test_a_retry_hint_is_retry_info_and_long_metadata_is_cut() -> None:
    status = status_pb(errors.Overloaded("full", retry_after_s=1.25, metadata={"pools": "p" * 5000, "none": ""}))
    (retry,) = _unpacked(status, error_details_pb2.RetryInfo)
    assert retry.retry_delay.ToMilliseconds() == 1250  # type: ignore[attr-defined]
    (info,) = _unpacked(status, error_details_pb2.ErrorInfo)
    assert set(info.metadata) == {"pools"} and len(info.metadata["pools"]) == MAX_METADATA_CHARS  # type: ignore[attr-defined]
    assert not _unpacked(status_pb(errors.Unavailable("down")), error_details_pb2.RetryInfo)


def test_a_long_message_is_cut_to_fit_the_trailers() -> None:
    status = status_pb(errors.MissingField("é" * 5000, field="question"))
    assert len(status.message.encode()) <= MAX_MESSAGE_BYTES and status.message.endswith("…")
    (bad,) = _unpacked(status, error_details_pb2.BadRequest)
    assert bad.field_violations[0].description == status.message  # type: ignore[attr-defined]
    assert len(status.SerializeToString()) < 3 * MAX_MESSAGE_BYTES


def test_engine_errors_map_to_their_classes_naming_the_pool() -> None:
    from engines.errors import EngineBadRequest, EngineTimeout, EngineUnavailable, EngineUnsupported

    cases = [
        (EngineUnsupported("no images"), errors.EngineCannotServe),
        (EngineBadRequest("400"), errors.EngineRejected),
        (EngineTimeout("slow"), errors.DeadlineExceeded),
        (EngineUnavailable("down"), errors.Unavailable),
    ]
    for engine_error, cls in cases:
        mapped = errors.from_engine_error(engine_error, "vllm")
        assert type(mapped) is cls and mapped.metadata == {"pool": "vllm"} and "'vllm'" in mapped.message


def test_a_bulk_item_error_is_a_status_with_its_reason() -> None:
    status = item_status_pb("INVALID_ARGUMENT", "item.image is corrupt", "IMAGE_UNDECODABLE")
    assert (status.code, status.message) == (3, "item.image is corrupt")
    (info,) = _unpacked(status, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("IMAGE_UNDECODABLE", DOMAIN)  # type: ignore[attr-defined]
    old = item_status_pb("UNAVAILABLE", "no engine", "")  # stored before reasons existed
    assert (old.code, list(old.details)) == (grpc.StatusCode.UNAVAILABLE.value[0], [])
    assert item_status_pb("NO_SUCH_CODE", "?", "").code == grpc.StatusCode.UNKNOWN.value[0]


# -- a real server --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    """The quick-start router with small limits, a two-item job cap and a 250-token context."""
    env = {
        "ROADWORK__LIMITS__MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES),
        "ROADWORK__LIMITS__MAX_IMAGE_PIXELS": str(MAX_IMAGE_PIXELS),
        "ROADWORK__LIMITS__MAX_BATCH_ITEMS": "2",
        **{f"ROADWORK__POOLS__{p}__CONTEXT_TOKENS": str(CONTEXT_TOKENS) for p in ("VLLM", "SGLANG", "LMDEPLOY")},
    }
    r = RunningRouter(make_config(tmp_path_factory.mktemp("details"), **env)).wait_ready()
    yield r
    r.stop()


def _fails(call: Callable[[], object], code: grpc.StatusCode, reason: str, field: str = "") -> ErrorDetails:
    """The details of the error `call()` ends with, checked: its code, reason and BadRequest field."""
    err = rpc_error(call)
    got = ErrorDetails(err)
    assert (err.code(), got.reason) == (code, reason), err.details()  # type: ignore[attr-defined]
    assert got.field == field
    return got


IA, NF, FP, RE = (
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)


def test_detect_image_errors(limited: RunningRouter) -> None:
    detect = limited.stub.Detect
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    _fails(lambda: detect(pb.DetectRequest(image=b""), timeout=30), IA, "FIELD_MISSING", "image")
    _fails(lambda: detect(pb.DetectRequest(image=b"not an image"), timeout=30), IA, "IMAGE_UNDECODABLE", "image")
    _fails(lambda: detect(pb.DetectRequest(image=gif.getvalue()), timeout=30), IA, "IMAGE_FORMAT_UNSUPPORTED", "image")
    big = _fails(lambda: detect(pb.DetectRequest(image=b"\xff\xd8\xff" + bytes(MAX_IMAGE_BYTES)), timeout=30),
                 RE, "IMAGE_TOO_LARGE")  # fmt: skip
    assert dict(big.info.metadata) | {"request_id": ""} == {
        "field": "image", "limit": str(MAX_IMAGE_BYTES), "size": str(MAX_IMAGE_BYTES + 3), "request_id": ""
    }  # fmt: skip
    tall = _fails(lambda: detect(pb.DetectRequest(image=_png_header(1000, 1000)), timeout=30), RE,
                  "IMAGE_TOO_MANY_PIXELS")  # fmt: skip
    assert (tall.info.metadata["limit"], tall.info.metadata["size"]) == (str(MAX_IMAGE_PIXELS), "1000000")


def test_every_error_names_the_request_id(limited: RunningRouter) -> None:
    call = lambda: limited.stub.Detect(pb.DetectRequest(), metadata=(("x-request-id", "rid-14"),), timeout=30)  # noqa: E731
    assert _fails(call, IA, "FIELD_MISSING", "image").info.metadata["request_id"] == "rid-14"


def test_ask_validation_errors(limited: RunningRouter, sample_jpeg: bytes) -> None:
    def ask(**kw: object) -> Callable[[], object]:
        return lambda: list(limited.stub.Ask(pb.AskRequest(**kw), timeout=60))

    img = {"image": sample_jpeg}
    _fails(ask(**img, question=" "), IA, "FIELD_MISSING", "question")
    _fails(ask(question="no image?"), IA, "FIELD_MISSING", "image")
    long = _fails(ask(**img, question="q" * 4001), IA, "QUESTION_TOO_LONG", "question")
    assert (long.info.metadata["limit"], long.info.metadata["size"]) == ("4000", "4001")
    hot = pb.GenerationOptions(temperature=9)
    _fails(ask(**img, question="q", generation=hot), IA, "OPTION_OUT_OF_RANGE", "generation.temperature")
    many = pb.GenerationOptions(max_tokens=100_000)
    assert (
        _fails(
            ask(**img, question="q", generation=many), IA, "OPTION_OUT_OF_RANGE", "generation.max_tokens"
        ).info.metadata["max"]
        == "2048"
    )
    _fails(ask(**img, question="q", format=99), IA, "OPTION_OUT_OF_RANGE", "format")
    _fails(ask(**img, question="q", session_id="s_nope", open_session=True), IA, "CONFLICTING_FIELDS", "open_session")
    unknown = _fails(ask(question="q", session_id="s_nope"), NF, "SESSION_NOT_FOUND")
    assert dict(unknown.info.metadata, request_id="") == {
        "session_id": "s_nope",
        "field": "session_id",
        "request_id": "",
    }


def test_ask_errors_after_the_detection(limited: RunningRouter, sample_jpeg: bytes) -> None:
    """The image checks that need the pool: its aspect ratio, and its tokens against the context."""
    stub = limited.stub
    thin = lambda: list(stub.Ask(pb.AskRequest(image=_png(1000, 4), question="q?"), timeout=60))  # noqa: E731
    _fails(thin, IA, "IMAGE_ASPECT_RATIO", "image")
    over = pb.AskRequest(image=sample_jpeg, question="q?", generation=pb.GenerationOptions(max_tokens=100))
    got = _fails(lambda: list(stub.Ask(over, timeout=60)), IA, "IMAGE_OVER_CONTEXT", "image")
    assert got.info.metadata["pools"] == "vllm,sglang,lmdeploy" and f"{CONTEXT_TOKENS}-token" in got.status.message
    fits = pb.AskRequest(image=sample_jpeg, question="q?", generation=pb.GenerationOptions(max_tokens=1))
    assert list(stub.Ask(fits, timeout=60))[-1].done.usage.completion_tokens == 1


def test_session_errors(limited: RunningRouter) -> None:
    stub = limited.stub
    close = lambda sid: lambda: stub.CloseSession(pb.CloseSessionRequest(session_id=sid), timeout=30)  # noqa: E731
    _fails(close(""), IA, "FIELD_MISSING", "session_id")
    _fails(close("s_nope"), NF, "SESSION_NOT_FOUND")
    sid = stub.CreateSession(pb.CreateSessionRequest(), timeout=30).session.session_id
    close(sid)()
    closed = _fails(close(sid), FP, "SESSION_CLOSED")  # closing a closed session
    assert closed.info.metadata["session_id"] == sid
    again = pb.AskRequest(question="still there?", session_id=sid)
    _fails(lambda: list(stub.Ask(again, timeout=30)), FP, "SESSION_CLOSED")
    brief = stub.CreateSession(pb.CreateSessionRequest(ttl=Duration(seconds=1)), timeout=30).session.session_id
    time.sleep(1.3)
    assert _fails(close(brief), FP, "SESSION_EXPIRED").info.metadata["session_id"] == brief


def test_a_follow_up_in_a_session_without_an_image_names_the_image(limited: RunningRouter) -> None:
    sid = limited.stub.CreateSession(pb.CreateSessionRequest(), timeout=30).session.session_id
    follow = pb.AskRequest(question="what is here?", session_id=sid)
    got = _fails(lambda: list(limited.stub.Ask(follow, timeout=30)), IA, "FIELD_MISSING", "image")
    assert got.info.metadata["session_id"] == sid


def test_request_bytes_that_do_not_parse(limited: RunningRouter) -> None:
    raw = limited.channel.unary_unary("/roadwork.v1.RouterService/CloseSession")
    _fails(lambda: raw(b"\x0a\x02\xff\xfe", timeout=30), IA, "REQUEST_MALFORMED")  # session_id: invalid UTF-8


def _submit(r: RunningRouter, *messages: pb.SubmitBatchRequest) -> Callable[[], object]:
    return lambda: r.stub.SubmitBatch(iter(messages), timeout=60)


def _item(image: bytes, question: str = "q?") -> pb.SubmitBatchRequest:
    return pb.SubmitBatchRequest(item=pb.BatchItem(image=image, question=question, item_id="a.jpg"))


def _options(**kw: object) -> pb.SubmitBatchRequest:
    return pb.SubmitBatchRequest(options=pb.BatchOptions(**kw))


def test_submit_batch_errors(limited: RunningRouter) -> None:
    png = _png(32, 24)
    _fails(_submit(limited), IA, "FIELD_MISSING", "item")
    first = _fails(_submit(limited, _item(b"")), IA, "FIELD_MISSING", "item.image")
    assert dict(first.info.metadata, request_id="") == {"item": "0", "item_id": "a.jpg", "request_id": ""}
    assert (
        _fails(_submit(limited, _item(png), _item(png, "")), IA, "FIELD_MISSING", "item.question").info.metadata["item"]
        == "1"
    )
    _fails(_submit(limited, _item(png), _options()), IA, "REQUEST_MALFORMED", "options")
    _fails(_submit(limited, pb.SubmitBatchRequest()), IA, "REQUEST_MALFORMED", "payload")
    hot = pb.GenerationOptions(temperature=-1)
    _fails(_submit(limited, _options(generation=hot), _item(png)), IA, "OPTION_OUT_OF_RANGE",
           "options.generation.temperature")  # fmt: skip
    _fails(_submit(limited, _options(format=99), _item(png)), IA, "OPTION_OUT_OF_RANGE", "options.format")
    late = _options()
    late.options.item_timeout.FromSeconds(-1)
    _fails(_submit(limited, late, _item(png)), IA, "OPTION_OUT_OF_RANGE", "options.item_timeout")
    assert _fails(_submit(limited, *[_item(png)] * 3), RE, "BATCH_TOO_LARGE").info.metadata["limit"] == "2"
    big = _fails(_submit(limited, _item(png + bytes(MAX_IMAGE_BYTES))), RE, "IMAGE_TOO_LARGE")
    assert (big.info.metadata["field"], big.info.metadata["item"]) == ("item.image", "0")


def test_job_errors(limited: RunningRouter) -> None:
    stub = limited.stub
    _fails(lambda: stub.GetBatch(pb.GetBatchRequest(), timeout=30), IA, "FIELD_MISSING", "job_id")
    unknown = _fails(lambda: stub.GetBatch(pb.GetBatchRequest(job_id="job_nope"), timeout=30), NF, "JOB_NOT_FOUND")
    assert unknown.info.metadata["job_id"] == "job_nope"
    long = "job_" + "é" * 20_000  # quoted cut in the message and metadata: the trailers stay under gRPC's limit
    got = _fails(lambda: stub.GetBatch(pb.GetBatchRequest(job_id=long), timeout=30), NF, "JOB_NOT_FOUND")
    assert len(got.info.metadata["job_id"]) == MAX_METADATA_CHARS and len(got.status.message) < 200
    watch = pb.WatchBatchRequest(job_id="job_nope")
    _fails(lambda: list(stub.WatchBatch(watch, timeout=30)), NF, "JOB_NOT_FOUND")
    job = stub.SubmitBatch(iter([_options(detect_only=True), _item(_png(32, 24))]), timeout=60).job
    *_, last = stub.WatchBatch(pb.WatchBatchRequest(job_id=job.job_id), timeout=120)
    assert last.job.state == pb.BATCH_STATE_COMPLETED
    cancel = lambda: stub.CancelBatch(pb.CancelBatchRequest(job_id=job.job_id), timeout=30)  # noqa: E731
    done = _fails(cancel, FP, "JOB_FINISHED")
    assert (done.info.metadata["job_id"], done.info.metadata["state"]) == (job.job_id, "COMPLETED")


def _sample_error(cls: type[errors.RouterError]) -> errors.RouterError:
    retry = 0.75 if cls is errors.Overloaded else None
    return cls(f"a {cls.__name__}", field="image", retry_after_s=retry, metadata={"pool": "vllm"})


@pytest.mark.parametrize("cls", _leaves(), ids=lambda c: c.__name__)
def test_the_servicer_sends_every_error_class_with_its_details(
    limited: RunningRouter, monkeypatch: pytest.MonkeyPatch, cls: type[errors.RouterError]
) -> None:
    """Each class, raised under Detect (the engine-side ones cannot be provoked on the embedded
    engine): its code, its reason, the field, the metadata, and RetryInfo exactly for a retry hint."""

    async def failing(_image: bytes) -> None:
        raise _sample_error(cls)

    monkeypatch.setattr(limited.app.pipeline, "detect", failing)
    want_field = "image" if cls.code is grpc.StatusCode.INVALID_ARGUMENT else ""
    got = _fails(
        lambda: limited.stub.Detect(pb.DetectRequest(image=b"x"), timeout=30), cls.code, cls.reason, want_field
    )
    assert got.status.message == f"a {cls.__name__}" and got.info.metadata["pool"] == "vllm"
    assert got.info.metadata.get("field", "") == ("" if want_field else "image")
    assert (got.retry is not None) == (cls is errors.Overloaded)
    if got.retry is not None:
        assert got.retry.retry_delay.ToMilliseconds() == 750


@pytest.mark.parametrize(
    ("exc", "code", "reason"),
    [(TimeoutError(), grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"),
     (ValueError("a bug"), grpc.StatusCode.INTERNAL, "INTERNAL_ERROR")],
)  # fmt: skip
def test_a_timeout_and_a_bug_have_details_too(
    limited: RunningRouter, monkeypatch: pytest.MonkeyPatch, exc: Exception, code: grpc.StatusCode, reason: str
) -> None:
    async def failing(_image: bytes) -> None:
        raise exc

    monkeypatch.setattr(limited.app.pipeline, "detect", failing)
    call = lambda: limited.stub.Detect(pb.DetectRequest(image=b"x"), metadata=(("x-request-id", "bug-1"),), timeout=30)  # noqa: E731
    got = _fails(call, code, reason)
    assert got.info.metadata["request_id"] == "bug-1"
    if code is grpc.StatusCode.INTERNAL:
        assert "bug-1" in got.status.message and "a bug" not in got.status.message


def test_a_message_over_the_grpc_limit_has_no_details(tmp_path_factory: pytest.TempPathFactory) -> None:
    """gRPC refuses it before the router sees the call: RESOURCE_EXHAUSTED without a Status (as the proto says)."""
    r = RunningRouter(make_config(tmp_path_factory.mktemp("msg"), ROADWORK__SERVER__MAX_MESSAGE_BYTES="1000"))
    try:
        err = rpc_error(lambda: r.stub.Detect(pb.DetectRequest(image=bytes(2000)), timeout=30))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
        assert not any(k == "grpc-status-details-bin" for k, _ in err.trailing_metadata() or ())  # type: ignore[attr-defined]
    finally:
        r.stop()
