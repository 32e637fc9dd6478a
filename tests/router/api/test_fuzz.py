"""Property-based fuzzing of the public API through a real gRPC server on loopback (issue 5).

Every case is a request a careless or hostile client could send: random, truncated and bit-flipped
image bytes, crafted image headers with absurd dimensions, empty / whitespace / oversized / odd
unicode strings, absurd numbers (max_tokens over the cap, temperature NaN / inf / negative, bulk
jobs over `limits.max_batch_items`), and hand-built wire bytes (unknown fields, wrong wire types for
known field numbers, overlong varints, 64-bit values in uint32 fields, bools other than 0/1, a
SubmitBatch message with neither oneof arm, invalid UTF-8 in string fields, corrupt framing). The
request messages have no enum fields, so "unknown enum values" are covered by those wire-level
analogues. Each case must end with a status of the set expected for its input class, never
INTERNAL or UNKNOWN, and with a non-empty message on errors, whose google.rpc.Status details (read
with grpcio-status) hold an ErrorInfo with a reason of that code, and a BadRequest on INVALID_ARGUMENT
(but for bytes that do not parse); only the two errors gRPC itself raises (a message over its size
limit) come without. Afterwards the router must still be SERVING and answer a valid Detect.

The limits are lowered (env overrides) so over-limit cases stay cheap, and valid Ask requests (which
run the embedded text model) are kept few and short. The cases sum to TOTAL_CASES (10,000);
`derandomize=True` and no example database make every CI run the same.
"""

from __future__ import annotations

import io
import math
import random
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from router import errors
from router._proto.roadwork.v1 import router_pb2 as pb
from tests.conftest import SAMPLE, ErrorDetails, RunningRouter, make_config

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # noise read as TIFF

# -- budget: constants summing to 10,000 cases -------------------------------------------------------

N_DETECT_IMAGES = 2_388  # Detect: empty, garbage, truncated, flipped, spliced, oversized, foreign formats
N_DETECT_HEADERS = 400  # Detect: PNG / JPEG headers claiming absurd (or zero) dimensions
N_ASK_INVALID = 2_000  # Ask: each request carries one defect validation must catch
N_OVER_MESSAGE_LIMIT = 12  # Detect / Ask / CreateSession / SubmitBatch over gRPC's message size limit
N_ASK_VALID = 20  # Ask: valid, odd unicode questions, max_tokens 1-2 (runs the embedded model)
N_SESSIONS = 700  # CreateSession / CloseSession / follow-ups on closed sessions
N_JOB_IDS = 1_200  # GetBatch / CancelBatch / WatchBatch / ListBatchResults with random ids and numbers
N_SUBMIT_BATCH = 1_000  # SubmitBatch streams: options, items, misplaced options, over max_batch_items
N_RAW_WELL_FORMED = 1_400  # hand-built wire bytes that parse: unknown fields, odd varints, wrong wire types
N_RAW_UNDECODABLE = 880  # hand-built wire bytes that do not parse: invalid UTF-8, corrupt framing
TOTAL_CASES = (
    N_DETECT_IMAGES + N_DETECT_HEADERS + N_ASK_INVALID + N_OVER_MESSAGE_LIMIT + N_ASK_VALID + N_SESSIONS + N_JOB_IDS
    + N_SUBMIT_BATCH + N_RAW_WELL_FORMED + N_RAW_UNDECODABLE
)  # fmt: skip
assert TOTAL_CASES == 10_000

# -- the router under test: lowered limits --------------------------------------------------------------

MAX_IMAGE_BYTES = 128 * 1024  # the sample JPEG (99 KB) fits
MAX_IMAGE_PIXELS = 640 * 480  # exactly the sample's size
MAX_QUESTION_CHARS = 64
MAX_BATCH_ITEMS = 6
MAX_MESSAGE_BYTES = 512 * 1024  # gRPC's own limit on one request message
MAX_TOKENS_CAP = 16
LIMITS = {
    "ROADWORK__LIMITS__MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES),
    "ROADWORK__LIMITS__MAX_IMAGE_PIXELS": str(MAX_IMAGE_PIXELS),
    "ROADWORK__LIMITS__MAX_QUESTION_CHARS": str(MAX_QUESTION_CHARS),
    "ROADWORK__LIMITS__MAX_BATCH_ITEMS": str(MAX_BATCH_ITEMS),
    "ROADWORK__SERVER__MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES),
    "ROADWORK__GENERATION__MAX_TOKENS": "2",  # anything that does reach the text model stays short
    "ROADWORK__GENERATION__MAX_TOKENS_CAP": str(MAX_TOKENS_CAP),
}


def fuzz_settings(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


Code = grpc.StatusCode
OK, IA, NF, FP, RE = Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.FAILED_PRECONDITION, Code.RESOURCE_EXHAUSTED
NEVER = {Code.INTERNAL, Code.UNKNOWN}
T = TypeVar("T")
Outcome = tuple[grpc.StatusCode, str, Any, grpc.RpcError | None]
TIMEOUT = 60.0
SERVICE = "/roadwork.v1.RouterService/"
# Each reason's status code (router/errors.py): a Status whose reason belongs to another code is a bug.
REASON_CODES: dict[str, set[grpc.StatusCode]] = {}
for _cls in vars(errors).values():
    if isinstance(_cls, type) and issubclass(_cls, errors.RouterError) and "reason" in vars(_cls):
        REASON_CODES.setdefault(_cls.reason, set()).add(_cls.code)
UNFIELDED = {"REQUEST_MALFORMED", "ENGINE_REJECTED"}  # INVALID_ARGUMENT reasons that may name no field


def call(fn: Callable[[], T]) -> Outcome:
    """Run one RPC; (status code, details, response or None, the error or None)."""
    try:
        return OK, "", fn(), None
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or "", None, exc


def expect(outcome: Outcome, allowed: set[grpc.StatusCode], what: str, *, grpc_refused: bool = False) -> Any:
    """The response, after checking the status against `allowed`, and an error's details: the
    router's errors carry them; `grpc_refused` ones (a message over gRPC's limit) do not."""
    code, details, response, err = outcome
    assert code not in NEVER, f"{what}: {code.name}: {details}"
    names = sorted(c.name for c in allowed)
    assert code in allowed, f"{what}: got {code.name} ({details[:300]}), expected one of {names}"
    if code is OK:
        return response
    assert details.strip(), f"{what}: {code.name} with an empty message"
    assert err is not None
    if grpc_refused:
        assert not any(k == "grpc-status-details-bin" for k, _ in err.trailing_metadata() or ()), what  # type: ignore[attr-defined]
        return response
    rich = ErrorDetails(err)  # same code and message as the call's, an ErrorInfo of the router's domain
    assert code in REASON_CODES.get(rich.reason, set()), f"{what}: {code.name} with reason {rich.reason!r}"
    if code is IA and rich.reason not in UNFIELDED:
        assert rich.field, f"{what}: INVALID_ARGUMENT {rich.reason} names no field ({details[:200]})"
    return response


def check_detection(d: pb.Detection) -> None:
    assert 0.0 <= d.roadwork_probability <= 1.0
    assert d.verdict == (pb.VERDICT_ROADWORK if d.roadwork_probability > 0.5 else pb.VERDICT_NO_ROADWORK)
    assert 0 < d.image_width * d.image_height <= MAX_IMAGE_PIXELS
    assert len(d.image_sha256) == 64


# -- image material -------------------------------------------------------------------------------------


def _encode(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


SAMPLE_JPEG = SAMPLE.read_bytes()
_THUMB = Image.open(io.BytesIO(SAMPLE_JPEG)).convert("RGB").resize((64, 48))
THUMB_JPEG = _encode(_THUMB, "JPEG", quality=70)
THUMB_PNG = _encode(_THUMB.resize((40, 30)), "PNG")
THUMB_WEBP = _encode(_THUMB.resize((40, 30)), "WEBP")
VALID = (SAMPLE_JPEG, THUMB_JPEG, THUMB_PNG, THUMB_WEBP)
SEEDS = (SAMPLE_JPEG, THUMB_JPEG, THUMB_JPEG, THUMB_PNG, THUMB_PNG, THUMB_WEBP)  # mutate thumbnails more often
FOREIGN = (  # real images in formats the router does not take
    _encode(_THUMB, "GIF"),
    _encode(_THUMB, "BMP"),
    _encode(_THUMB, "TIFF"),
    _encode(_THUMB.resize((16, 16)), "ICO"),
    _encode(_THUMB, "PPM"),
)
MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"GIF89a", b"BM", b"II*\x00", b"")

# What Detect may answer for each class of image bytes.
DETECT_EXPECT: dict[str, set[grpc.StatusCode]] = {
    "empty": {IA},
    "garbage": {IA, RE},  # PIL may read noise as a headerless format claiming a decompression bomb's size
    "magic": {IA, RE},  # a format's magic bytes, then noise: the header may claim any size
    "foreign": {IA},
    "truncated": {OK, IA, RE},
    "flipped": {OK, IA, RE},
    "spliced": {OK, IA, RE},
    "oversize": {RE},  # over limits.max_image_bytes
    "huge_message": {RE},  # over the gRPC message limit too (server.max_message_bytes): slow, kept few
    "valid": {OK},
}
IMAGE_KINDS = tuple(k for k in DETECT_EXPECT if k != "huge_message")


def _noise(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


@st.composite
def images(draw: st.DrawFn, kinds: tuple[str, ...] = IMAGE_KINDS) -> tuple[str, bytes]:
    """(class, bytes) for image fields."""
    kind = draw(st.sampled_from(kinds))
    if kind == "empty":
        return kind, b""
    if kind == "garbage":
        data = draw(st.binary(min_size=1, max_size=256) | st.builds(_noise, st.integers(0), st.integers(1, 20_000)))
        return kind, data
    if kind == "magic":
        return kind, draw(st.sampled_from(MAGIC)) + draw(st.binary(min_size=1, max_size=512))
    if kind == "foreign":
        return kind, draw(st.sampled_from(FOREIGN))
    if kind == "valid":
        return kind, draw(st.sampled_from(VALID))
    if kind in ("oversize", "huge_message"):
        low, high = (
            (MAX_IMAGE_BYTES + 1, 2 * MAX_IMAGE_BYTES) if kind == "oversize" else (MAX_MESSAGE_BYTES + 1, 2 << 20)
        )
        size = draw(st.integers(low, high))
        head = draw(st.sampled_from(VALID))
        return kind, head + _noise(size, size - len(head))
    seed = bytearray(draw(st.sampled_from(SEEDS)))
    if kind == "truncated":
        return kind, bytes(seed[: draw(st.integers(0, len(seed) - 1))])
    if kind == "flipped":
        for _ in range(draw(st.integers(1, 8))):
            seed[draw(st.integers(0, len(seed) - 1))] ^= draw(st.integers(1, 255))
        return kind, bytes(seed)
    # spliced: a range cut out, or random bytes pasted in
    at = draw(st.integers(0, len(seed)))
    cut = draw(st.integers(0, 64))
    return kind, bytes(seed[:at] + draw(st.binary(max_size=64)) + seed[at + cut :])


# -- Detect ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    r = RunningRouter(make_config(tmp_path_factory.mktemp("fuzz"), **LIMITS)).wait_ready()
    yield r
    r.stop()


@fuzz_settings(N_DETECT_IMAGES)
@given(case=images())
def test_detect_random_image_bytes(fuzz_router: RunningRouter, case: tuple[str, bytes]) -> None:
    kind, data = case
    outcome = call(lambda: fuzz_router.stub.Detect(pb.DetectRequest(image=data), timeout=TIMEOUT))
    response = expect(outcome, DETECT_EXPECT[kind], f"Detect({kind}, {len(data)} bytes)")
    if response is not None:
        check_detection(response.detection)


def _png(width: int, height: int, depth: int, color: int, idat: bytes) -> bytes:
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


_SOF = THUMB_JPEG.index(b"\xff\xc0")
_PNG_MODES = {(1, 0), (8, 0), (16, 0), (8, 2), (16, 2), (1, 3), (8, 3), (8, 4), (8, 6), (16, 6)}


@st.composite
def headers(draw: st.DrawFn) -> tuple[str, bytes, set[grpc.StatusCode]]:
    """Images whose header claims a size: over the pixel limit is RESOURCE_EXHAUSTED without decoding."""
    dim = st.integers(0, 3) | st.integers(1, 4096) | st.integers(1, 2**31 - 1)
    if draw(st.booleans()):
        w, h = draw(dim), draw(dim)
        depth, color = draw(st.sampled_from(sorted(_PNG_MODES | {(16, 3), (4, 2), (2, 6), (8, 5)})))
        raw = b"\x00" * min(h * (1 + w * 8), 1 << 14)  # scanlines of zeros (enough for small images)
        data = _png(w, h, depth, color, zlib.compress(raw) if draw(st.booleans()) else draw(st.binary(max_size=32)))
        ok_header = w > 0 and h > 0 and (depth, color) in _PNG_MODES
        name = f"PNG {w}x{h} depth {depth} color {color}"
    else:
        w, h = draw(st.integers(0, 65535)), draw(st.integers(0, 65535))
        data = THUMB_JPEG[: _SOF + 5] + struct.pack(">HH", h, w) + THUMB_JPEG[_SOF + 9 :]
        ok_header = w > 0 and h > 0
        name = f"JPEG {w}x{h}"
    return name, data, ({RE} if ok_header and w * h > MAX_IMAGE_PIXELS else {OK, IA})


@fuzz_settings(N_DETECT_HEADERS)
@given(case=headers())
def test_detect_absurd_image_dimensions(
    fuzz_router: RunningRouter, case: tuple[str, bytes, set[grpc.StatusCode]]
) -> None:
    name, data, allowed = case
    outcome = call(lambda: fuzz_router.stub.Detect(pb.DetectRequest(image=data), timeout=TIMEOUT))
    response = expect(outcome, allowed, f"Detect({name})")
    if response is not None:
        check_detection(response.detection)


# -- Ask ------------------------------------------------------------------------------------------------

# Any unicode but surrogates (protobuf strings are UTF-8): control characters, NUL, combining marks,
# right-to-left text, emoji, private use, noncharacters.
odd_text = st.text(st.characters(codec="utf-8"), max_size=40)
blank = st.text(
    st.sampled_from(" \t\n\r\x0b\x0c\u00a0\u1680\u2000\u2028\u2029\u202f\u3000\x1c\x1d\x1e\x1f"), max_size=8
)
questions = odd_text.filter(lambda q: q.strip() != "" and len(q.strip()) <= MAX_QUESTION_CHARS)
session_ids = st.text(min_size=1, max_size=64) | st.text(min_size=1).map(lambda s: "s_" + s) | st.just(" ")
float32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
bad_temperature = float32.filter(lambda t: math.isnan(t) or not 0.0 <= t <= 2.0)
good_temperature = st.none() | st.floats(0.0, 2.0, width=32)


def _long_question(draw: st.DrawFn) -> str:
    size = draw(st.integers(MAX_QUESTION_CHARS + 1, 4 * MAX_QUESTION_CHARS) | st.sampled_from([10_000, 100_000]))
    return draw(blank) + "é" * size + draw(odd_text)


@st.composite
def invalid_asks(draw: st.DrawFn) -> tuple[str, pb.AskRequest, set[grpc.StatusCode]]:
    """An AskRequest with exactly one defect (the rest valid), and the status it must get."""
    defect = draw(st.sampled_from(["blank_question", "long_question", "max_tokens", "temperature", "image",
                                   "unknown_session", "no_image_no_session",
                                   "open_session_and_session_id"]))  # fmt: skip
    question = draw(questions)
    image = draw(st.sampled_from([b"", THUMB_JPEG, THUMB_PNG]))
    session_id = draw(session_ids)  # unknown to the router: NOT_FOUND
    max_tokens = draw(st.integers(0, MAX_TOKENS_CAP))
    temperature = draw(good_temperature)
    allowed = {NF}
    if defect == "blank_question":
        question, allowed = draw(blank), {IA}
    elif defect == "long_question":
        question, allowed = _long_question(draw), {IA}
    elif defect == "max_tokens":
        max_tokens, allowed = draw(st.integers(MAX_TOKENS_CAP + 1, 2**32 - 1)), {IA}
    elif defect == "temperature":
        temperature, allowed = draw(bad_temperature), {IA}
    elif defect == "image":
        kind, image = draw(images(kinds=("garbage", "magic", "foreign", "oversize")))
        allowed = DETECT_EXPECT[kind]
    elif defect == "no_image_no_session":
        image, session_id, allowed = b"", "", {IA}
    # open_session with a session_id is a defect of its own, checked before the others
    open_session = defect == "open_session_and_session_id" or (not session_id and draw(st.booleans()))
    if defect == "open_session_and_session_id":
        allowed = {IA}
    options = pb.GenerationOptions(max_tokens=max_tokens)
    if temperature is not None:
        options.temperature = temperature
    request = pb.AskRequest(
        image=image,
        question=question,
        session_id=session_id,
        open_session=open_session,
        generation=options,
        strict=draw(st.booleans()),
    )
    return defect, request, allowed


@fuzz_settings(N_ASK_INVALID)
@given(case=invalid_asks())
def test_ask_invalid_requests(
    fuzz_router: RunningRouter, case: tuple[str, pb.AskRequest, set[grpc.StatusCode]]
) -> None:
    defect, request, allowed = case
    outcome = call(lambda: list(fuzz_router.stub.Ask(request, timeout=TIMEOUT)))
    assert outcome[0] is not OK, f"Ask({defect}) must fail validation"
    expect(outcome, allowed, f"Ask({defect})")


@fuzz_settings(N_ASK_VALID)
@given(
    question=questions,
    max_tokens=st.integers(1, 2),
    temperature=good_temperature,
    open_session=st.booleans(),
    image=st.sampled_from([THUMB_JPEG, THUMB_PNG, THUMB_WEBP]),
)
def test_ask_valid_odd_unicode(
    fuzz_router: RunningRouter,
    question: str,
    max_tokens: int,
    temperature: float | None,
    open_session: bool,
    image: bytes,
) -> None:
    options = pb.GenerationOptions(max_tokens=max_tokens)
    if temperature is not None:
        options.temperature = temperature
    request = pb.AskRequest(image=image, question=question, open_session=open_session, generation=options)
    events = expect(call(lambda: list(fuzz_router.stub.Ask(request, timeout=TIMEOUT))), {OK}, "valid Ask")
    assert events[0].WhichOneof("event") == "detected" and events[-1].WhichOneof("event") == "done"
    done = events[-1].done
    assert done.answer == "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta")
    assert bool(done.session_id) == open_session and not done.degraded
    if open_session:
        expect(call(lambda: fuzz_router.stub.CloseSession(pb.CloseSessionRequest(session_id=done.session_id))), {OK},
               "CloseSession")  # fmt: skip


@fuzz_settings(N_OVER_MESSAGE_LIMIT)
@given(rpc=st.sampled_from(["Detect", "Ask", "CreateSession", "SubmitBatch"]), image=images(kinds=("huge_message",)))
def test_requests_over_the_message_limit(fuzz_router: RunningRouter, rpc: str, image: tuple[str, bytes]) -> None:
    """gRPC itself refuses a message over server.max_message_bytes (each case costs ~0.2-0.4 s: kept few)."""
    stub, data = fuzz_router.stub, image[1]
    requests: dict[str, Callable[[], Any]] = {
        "Detect": lambda: stub.Detect(pb.DetectRequest(image=data), timeout=TIMEOUT),
        "Ask": lambda: list(stub.Ask(pb.AskRequest(question="é" * len(data), image=THUMB_PNG), timeout=TIMEOUT)),
        "CreateSession": lambda: stub.CreateSession(pb.CreateSessionRequest(image=data), timeout=TIMEOUT),
        "SubmitBatch": lambda: stub.SubmitBatch(
            iter([pb.SubmitBatchRequest(item=pb.BatchItem(image=data))]), timeout=TIMEOUT
        ),
    }
    expect(call(requests[rpc]), {RE}, f"{rpc} with a {len(data)}-byte message", grpc_refused=True)


# -- sessions -------------------------------------------------------------------------------------------


@fuzz_settings(N_SESSIONS)
@given(
    op=st.sampled_from(["close_unknown", "create"]),
    session_id=st.just("") | session_ids | st.text(max_size=5_000),
    image=images(),
    ttl=st.integers(0, 2**32 - 1),
    follow_up=invalid_asks(),
)
def test_sessions(
    fuzz_router: RunningRouter,
    op: str,
    session_id: str,
    image: tuple[str, bytes],
    ttl: int,
    follow_up: tuple[str, pb.AskRequest, set[grpc.StatusCode]],
) -> None:
    stub = fuzz_router.stub
    if op == "close_unknown":
        outcome = call(lambda: stub.CloseSession(pb.CloseSessionRequest(session_id=session_id), timeout=TIMEOUT))
        expect(outcome, {IA} if not session_id else {NF}, "CloseSession(unknown)")
        return
    kind, data = image
    outcome = call(
        lambda: stub.CreateSession(pb.CreateSessionRequest(image=data, ttl=Duration(seconds=ttl)), timeout=TIMEOUT)
    )
    created = expect(outcome, {OK} if kind == "empty" else DETECT_EXPECT[kind], f"CreateSession({kind})")
    if created is None:
        return
    sid = created.session.session_id
    assert sid and created.session.expires_at.seconds >= created.session.created_at.seconds
    # A follow-up with one defect in a live session: validation still answers (NOT_FOUND cannot happen).
    defect, ask, allowed = follow_up
    ask.session_id = sid
    if defect == "open_session_and_session_id":
        allowed = {IA}
    else:
        ask.open_session = False  # a follow-up: opening a session with it is a defect of its own
    if defect == "unknown_session":
        ask.question = ""  # keep the follow-up invalid
        allowed = {IA}
    if defect == "no_image_no_session":
        allowed = {IA}  # no image in the request, and none (or one) in the session: keep it failing
        ask.question = " "
    got = call(lambda: list(stub.Ask(ask, timeout=TIMEOUT)))
    expect(got, allowed - {NF}, f"Ask(follow-up, {defect})")
    expect(call(lambda: stub.CloseSession(pb.CloseSessionRequest(session_id=sid), timeout=TIMEOUT)), {OK}, "Close")
    expect(call(lambda: stub.CloseSession(pb.CloseSessionRequest(session_id=sid), timeout=TIMEOUT)), {FP}, "Close 2")
    closed = pb.AskRequest(question="still there?", session_id=sid, generation=pb.GenerationOptions(max_tokens=1))
    expect(call(lambda: list(stub.Ask(closed, timeout=TIMEOUT))), {FP}, "Ask(closed session)")


# -- bulk jobs -----------------------------------------------------------------------------------------


def _submit(stub: Any, messages: list[pb.SubmitBatchRequest]) -> Outcome:
    return call(lambda: stub.SubmitBatch(iter(messages), timeout=TIMEOUT))


def _bad_generation(g: pb.GenerationOptions) -> bool:
    t = g.temperature
    return g.max_tokens > MAX_TOKENS_CAP or (g.HasField("temperature") and not 0.0 <= t <= 2.0)


def expected_submit(messages: list[pb.SubmitBatchRequest]) -> grpc.StatusCode:
    """The status SubmitBatch must answer, following the documented checks in stream order."""
    has_options = bool(messages) and messages[0].WhichOneof("payload") == "options"
    options = messages[0].options if has_options else pb.BatchOptions()
    if options.format not in pb.AnswerFormat.values():
        return IA  # an answer format this server does not know
    if not options.detect_only and _bad_generation(options.generation):
        return IA  # job-wide options out of range: rejected at submit, not item by item
    count = 0
    for m in messages[1:] if has_options else messages:
        if m.WhichOneof("payload") != "item":
            return IA  # misplaced options, or neither options nor item
        if count >= MAX_BATCH_ITEMS:
            return RE
        if not m.item.image:
            return IA
        if len(m.item.image) > MAX_IMAGE_BYTES:
            return RE
        if not options.detect_only and not (m.item.question.strip() or options.default_question.strip()):
            return IA
        count += 1
    return IA if count == 0 else OK


@st.composite
def batch_streams(draw: st.DrawFn) -> list[pb.SubmitBatchRequest]:
    detect_only = draw(st.booleans())
    # Jobs that run the text model carry only undecodable images: accepted, their items fail fast.
    kinds = ("empty", "garbage", "oversize", "valid", "flipped") if detect_only else ("empty", "garbage", "oversize")
    generation = pb.GenerationOptions(max_tokens=draw(st.integers(0, MAX_TOKENS_CAP + 2) | st.integers(0, 2**32 - 1)))
    temperature = draw(st.none() | float32)
    if temperature is not None:
        generation.temperature = temperature
    options = pb.BatchOptions(
        default_question=draw(st.just("") | blank | questions | st.text(max_size=2_000)),
        display_name=draw(odd_text | st.text(max_size=5_000)),
        generation=generation,
        detect_only=detect_only,
    )
    item = st.builds(
        lambda image, question, item_id: pb.SubmitBatchRequest(
            item=pb.BatchItem(image=image[1], question=question, item_id=item_id)
        ),
        images(kinds=kinds),
        st.just("") | blank | questions,
        odd_text,
    )
    stray = st.sampled_from([pb.SubmitBatchRequest(), pb.SubmitBatchRequest(options=pb.BatchOptions())])
    body = draw(st.lists(item | stray if draw(st.integers(0, 4)) == 0 else item, max_size=MAX_BATCH_ITEMS + 3))
    return ([pb.SubmitBatchRequest(options=options)] if draw(st.booleans()) else []) + body


@fuzz_settings(N_SUBMIT_BATCH)
@given(messages=batch_streams())
def test_submit_batch_streams(fuzz_router: RunningRouter, messages: list[pb.SubmitBatchRequest]) -> None:
    want = expected_submit(messages)
    response = expect(_submit(fuzz_router.stub, messages), {want}, f"SubmitBatch({len(messages)} messages)")
    if response is not None:
        job = response.job
        assert job.job_id and job.total == sum(m.WhichOneof("payload") == "item" for m in messages)
        cancel = call(lambda: fuzz_router.stub.CancelBatch(pb.CancelBatchRequest(job_id=job.job_id), timeout=TIMEOUT))
        expect(cancel, {OK, FP}, "CancelBatch(new job)")  # FAILED_PRECONDITION: it already completed


@pytest.fixture(scope="module")
def finished_job(fuzz_router: RunningRouter) -> str:
    """A detect-only job of two undecodable items, completed."""
    items = [pb.SubmitBatchRequest(item=pb.BatchItem(image=b"junk", item_id=str(i))) for i in range(2)]
    first = pb.SubmitBatchRequest(options=pb.BatchOptions(detect_only=True))
    job = fuzz_router.stub.SubmitBatch(iter([first, *items]), timeout=TIMEOUT)
    *_, last = fuzz_router.stub.WatchBatch(pb.WatchBatchRequest(job_id=job.job.job_id), timeout=TIMEOUT)
    assert last.job.state == pb.BATCH_STATE_COMPLETED and last.job.failed == 2
    return str(job.job.job_id)


@fuzz_settings(N_JOB_IDS)
@given(
    rpc=st.sampled_from(["GetBatch", "CancelBatch", "WatchBatch", "ListBatchResults"]),
    job_id=st.just("") | st.text(max_size=80) | st.text().map(lambda s: "job_" + s) | st.text(max_size=20_000),
    use_finished=st.integers(0, 5),
    offset=st.integers(0, 2**32 - 1) | st.integers(0, 3),
    limit=st.integers(0, 2**32 - 1) | st.integers(0, 3),
    follow=st.booleans(),
    request_id=st.none() | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=300),
)
def test_job_ids_and_numbers(
    fuzz_router: RunningRouter,
    finished_job: str,
    rpc: str,
    job_id: str,
    use_finished: int,
    offset: int,
    limit: int,
    follow: bool,
    request_id: str | None,
) -> None:
    if use_finished == 0:
        job_id = finished_job
    stub = fuzz_router.stub
    md = (("x-request-id", request_id),) if request_id else None
    requests: dict[str, Callable[[], Any]] = {
        "GetBatch": lambda: stub.GetBatch(pb.GetBatchRequest(job_id=job_id), timeout=TIMEOUT, metadata=md),
        "CancelBatch": lambda: stub.CancelBatch(pb.CancelBatchRequest(job_id=job_id), timeout=TIMEOUT, metadata=md),
        "WatchBatch": lambda: list(stub.WatchBatch(pb.WatchBatchRequest(job_id=job_id), timeout=TIMEOUT, metadata=md)),
        "ListBatchResults": lambda: list(
            stub.ListBatchResults(
                pb.ListBatchResultsRequest(job_id=job_id, offset=offset, limit=limit, follow=follow),
                timeout=TIMEOUT,
                metadata=md,
            )
        ),
    }
    if job_id == finished_job:
        allowed = {FP} if rpc == "CancelBatch" else {OK}
    else:
        allowed = {IA} if not job_id else {NF}
    response = expect(call(requests[rpc]), allowed, f"{rpc}(job_id of {len(job_id)} chars)")
    if rpc == "ListBatchResults" and response is not None:
        indexes = [r.result.index for r in response]
        assert indexes == [i for i in range(2) if i >= offset][: limit or None]


# -- hand-built wire bytes -----------------------------------------------------------------------------


def varint(n: int, pad: int = 0, limit: int = 10) -> bytes:
    """Base-128 varint of n (0 <= n < 2**64), with up to `pad` redundant bytes (at most `limit` in all)."""
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            break
    pad = min(pad, limit - len(out))
    if pad > 0:  # non-minimal but valid: 0x80 continuation bytes, then a final 0x00
        out[-1] |= 0x80
        out += b"\x80" * (pad - 1) + b"\x00"
    return bytes(out)


def key(number: int, wire_type: int, pad: int = 0) -> bytes:
    return varint(number << 3 | wire_type, pad, limit=5)


def delimited(number: int, payload: bytes) -> bytes:
    return key(number, 2) + varint(len(payload)) + payload


_WIRE = {
    FieldDescriptor.TYPE_STRING: 2,
    FieldDescriptor.TYPE_BYTES: 2,
    FieldDescriptor.TYPE_MESSAGE: 2,
    FieldDescriptor.TYPE_UINT32: 0,
    FieldDescriptor.TYPE_BOOL: 0,
    FieldDescriptor.TYPE_FLOAT: 5,
    FieldDescriptor.TYPE_ENUM: 0,
    FieldDescriptor.TYPE_INT64: 0,  # google.protobuf.Duration.seconds
    FieldDescriptor.TYPE_INT32: 0,  # google.protobuf.Duration.nanos
}
u64 = st.integers(0, 3) | st.integers(0, 2**32 - 1) | st.integers(2**32, 2**64 - 1)  # -1 as a uint32 is 2**64-1
pads = st.integers(0, 2) | st.just(0)
raw_images = st.sampled_from([b"", b"junk", THUMB_PNG, THUMB_JPEG[:300], THUMB_JPEG, b"\x00" * (MAX_IMAGE_BYTES + 1)])


@st.composite
def unknown_field(draw: st.DrawFn, desc: Descriptor) -> bytes:
    """A field the message does not declare, or a declared number with a wire type it does not have."""
    number = draw(st.sampled_from([f.number for f in desc.fields] + [7, 15, 16, 2047]) | st.integers(1, 2**29 - 1))
    known = desc.fields_by_number.get(number)
    wire_type = draw(st.sampled_from([w for w in (0, 1, 2, 3, 5) if known is None or w != _WIRE[known.type]]))
    if wire_type == 0:
        return key(number, 0) + varint(draw(u64), draw(pads))
    if wire_type == 1:
        return key(number, 1) + draw(st.binary(min_size=8, max_size=8))
    if wire_type == 5:
        return key(number, 5) + draw(st.binary(min_size=4, max_size=4))
    if wire_type == 3:  # an (empty) group
        return key(number, 3) + key(number, 4)
    return delimited(number, draw(st.binary(max_size=40)))  # unknown: any bytes, never parsed


@st.composite
def wire_message(draw: st.DrawFn, desc: Descriptor, depth: int = 0) -> bytes:
    """Well-formed wire bytes for `desc`: declared fields (any order, repeats) mixed with unknown ones."""
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        if not desc.fields or draw(st.integers(0, 3)) == 0:
            parts.append(draw(unknown_field(desc)))
            continue
        f = draw(st.sampled_from(list(desc.fields)))
        pad = draw(pads)
        if f.type == FieldDescriptor.TYPE_STRING:
            parts.append(key(f.number, 2, pad) + varint(len(b := draw(odd_text).encode())) + b)
        elif f.type == FieldDescriptor.TYPE_BYTES:
            parts.append(key(f.number, 2, pad) + varint(len(b := draw(raw_images))) + b)
        elif f.type == FieldDescriptor.TYPE_MESSAGE:
            assert f.message_type is not None
            body = draw(wire_message(f.message_type, depth + 1)) if depth < 2 else b""
            parts.append(key(f.number, 2, pad) + varint(len(body), draw(pads), limit=5) + body)
        elif f.type == FieldDescriptor.TYPE_FLOAT:
            parts.append(key(f.number, 5, pad) + draw(st.binary(min_size=4, max_size=4)))
        else:  # uint32, bool, enum: any 64-bit varint (truncated to 32 bits; a bool is true unless 0)
            parts.append(key(f.number, 0, pad) + varint(draw(u64), draw(pads)))
    return b"".join(parts)


RAW_RPCS: dict[str, tuple[str, type[Any]]] = {  # method -> (arity, request type)
    "Detect": ("unary", pb.DetectRequest),
    "Ask": ("stream", pb.AskRequest),
    "CreateSession": ("unary", pb.CreateSessionRequest),
    "CloseSession": ("unary", pb.CloseSessionRequest),
    "SubmitBatch": ("client_stream", pb.SubmitBatchRequest),
    "GetBatch": ("unary", pb.GetBatchRequest),
    "WatchBatch": ("stream", pb.WatchBatchRequest),
    "ListBatchResults": ("stream", pb.ListBatchResultsRequest),
    "CancelBatch": ("unary", pb.CancelBatchRequest),
    "GetStatus": ("unary", pb.GetStatusRequest),
}


def send_raw(r: RunningRouter, method: str, payload: list[bytes]) -> Outcome:
    """Send hand-built request bytes (no client-side serialization or UTF-8 check)."""
    arity = RAW_RPCS[method][0]
    path = SERVICE + method
    if arity == "unary":
        return call(lambda: r.channel.unary_unary(path)(payload[0], timeout=TIMEOUT))
    if arity == "stream":
        return call(lambda: list(r.channel.unary_stream(path)(payload[0], timeout=TIMEOUT)))
    submit = r.channel.stream_unary(path, response_deserializer=pb.SubmitBatchResponse.FromString)
    return call(lambda: submit(iter(payload), timeout=TIMEOUT))


def raw_expected(method: str, parsed: list[Any]) -> set[grpc.StatusCode]:
    """What the server must answer for the message(s) as the client-side parser reads them."""
    if method == "SubmitBatch":
        return {expected_submit(parsed)}
    if method in ("Detect", "CreateSession"):
        return {OK, IA, RE}
    if method == "GetStatus":
        return {OK}
    if method == "Ask":
        return {IA, NF, RE}  # its session_id is always an unknown one
    field = "session_id" if method == "CloseSession" else "job_id"
    return {NF} if getattr(parsed[0], field) else {IA}


@st.composite
def raw_requests(draw: st.DrawFn) -> tuple[str, list[bytes]]:
    method = draw(st.sampled_from(sorted(RAW_RPCS)))
    desc = RAW_RPCS[method][1].DESCRIPTOR
    if method == "SubmitBatch":
        return method, draw(st.lists(wire_message(desc), max_size=MAX_BATCH_ITEMS + 2))
    body = draw(wire_message(desc))
    if method == "Ask":  # last one wins: never a valid session, so never a (slow) generation
        body += delimited(3, ("s_fuzz_" + draw(odd_text)).encode())
    return method, [body]


@fuzz_settings(N_RAW_WELL_FORMED)
@given(case=raw_requests())
def test_raw_wire_well_formed(fuzz_router: RunningRouter, case: tuple[str, list[bytes]]) -> None:
    method, payload = case
    request_type = RAW_RPCS[method][1]
    parsed = [request_type.FromString(p) for p in payload]  # the generator makes well-formed bytes only
    # A message over gRPC's own limit is refused before the router sees it (Hypothesis can grow one:
    # a 524,308-byte CreateSession in one CI run).
    huge = max(map(len, payload), default=0) > MAX_MESSAGE_BYTES
    outcome = send_raw(fuzz_router, method, payload)
    expect(outcome, {RE} if huge else raw_expected(method, parsed), f"raw {method}", grpc_refused=huge)
    if method == "SubmitBatch" and outcome[2] is not None:
        job_id = outcome[2].job.job_id
        expect(call(lambda: fuzz_router.stub.CancelBatch(pb.CancelBatchRequest(job_id=job_id))), {OK, FP}, "cancel")


INVALID_UTF8 = (b"\xff", b"\x80", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xfe\xfe\xff\xff")
CORRUPT_TAILS = (
    b"\x08\x80",  # a varint cut short
    b"\x08" + b"\xff" * 10 + b"\x01",  # a varint over 10 bytes
    b"\x12\x05ab",  # a length past the end
    b"\x0e",  # wire type 6
    b"\x0f",  # wire type 7
    b"\x0a\xff\xff\xff\xff\x0f",  # a length of 4 GiB
    b"\x1b",  # a group never closed
    b"\x1c",  # a group closed, never opened
)


def _string_paths(desc: Descriptor, depth: int = 0) -> list[list[FieldDescriptor]]:
    paths: list[list[FieldDescriptor]] = []
    for f in desc.fields:
        if f.type == FieldDescriptor.TYPE_STRING:
            paths.append([f])
        elif f.type == FieldDescriptor.TYPE_MESSAGE and f.message_type is not None and depth < 2:
            paths += [[f, *p] for p in _string_paths(f.message_type, depth + 1)]
    return paths


@st.composite
def undecodable_requests(draw: st.DrawFn) -> tuple[str, list[bytes], str]:
    """Wire bytes the server's protobuf parser must reject: invalid UTF-8 in a string field (possibly
    nested), or corrupt framing; SubmitBatch gets the bad message anywhere in its stream."""
    method = draw(st.sampled_from(sorted(RAW_RPCS)))
    desc = RAW_RPCS[method][1].DESCRIPTOR
    paths = _string_paths(desc)
    good = draw(wire_message(desc))
    if draw(st.booleans()) and paths:
        path = draw(st.sampled_from(paths))
        text = draw(odd_text).encode()
        at = draw(st.integers(0, len(text)))
        bad = delimited(path[-1].number, text[:at] + draw(st.sampled_from(INVALID_UTF8)) + text[at:])
        for f in reversed(path[:-1]):
            bad = delimited(f.number, bad)
        what = "invalid UTF-8 in " + ".".join(f.name for f in path)
    else:
        bad, what = draw(st.sampled_from(CORRUPT_TAILS)), "corrupt framing"
    message = good + bad if draw(st.booleans()) or what == "corrupt framing" else bad + good
    if method != "SubmitBatch":
        return method, [message], what
    item = delimited(2, delimited(1, b"junk") + delimited(2, b"q?"))  # a valid item: the stream goes on
    before = [item] * draw(st.integers(0, 3))
    return method, [*before, message], what


def test_raw_wire_undecodable(fuzz_router: RunningRouter) -> None:
    """Bytes that do not parse are INVALID_ARGUMENT for every RPC (router.api.server.register), not UNKNOWN."""

    @fuzz_settings(N_RAW_UNDECODABLE)
    @given(case=undecodable_requests())
    def run(case: tuple[str, list[bytes], str]) -> None:
        method, payload, what = case
        with pytest.raises(DecodeError):
            RAW_RPCS[method][1].FromString(payload[-1])
        # A message over gRPC's own limit is refused before any parser sees it (Hypothesis can grow one).
        huge = max(map(len, payload)) > MAX_MESSAGE_BYTES
        outcome = send_raw(fuzz_router, method, payload)
        expect(outcome, {RE} if huge else {IA}, f"raw {method} with {what}", grpc_refused=huge)

    run()


# -- still standing ------------------------------------------------------------------------------------


def test_zz_router_still_healthy_after_fuzz(fuzz_router: RunningRouter) -> None:
    """Runs last (file order): health SERVING, a valid Detect answered, no request ended INTERNAL."""
    health = health_pb2_grpc.HealthStub(fuzz_router.channel)
    for service in ("", "roadwork.v1.RouterService"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    check_detection(fuzz_router.stub.Detect(pb.DetectRequest(image=SAMPLE_JPEG), timeout=TIMEOUT).detection)
    events = list(fuzz_router.stub.Ask(pb.AskRequest(image=THUMB_JPEG, question="Roadwork?"), timeout=TIMEOUT))
    assert events[-1].WhichOneof("event") == "done"
    fuzz_router.stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)
    assert all(not t.done() for t in fuzz_router.app.runner._tasks), "a bulk worker died"
    codes = {
        s.labels["code"]
        for m in fuzz_router.app.metrics.registry.collect()
        if m.name == "roadwork_requests"
        for s in m.samples
        if s.name == "roadwork_requests_total" and s.value > 0
    }
    assert not codes & {"INTERNAL", "UNKNOWN"}, codes
