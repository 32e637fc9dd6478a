"""Domain types the pipeline, jobs and servicer exchange (no protobuf here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from detectors.base import Detection
from engines.base import Usage
from router.flow.verdict import Verdict
from router.flow.vision import ImageSent


class RequestKind(Enum):
    """The shape of a request; it picks the engine pools (see `routing` in the config)."""

    MULTI_TURN = "multi_turn"
    BATCH = "batch"
    SINGLE_SHOT = "single_shot"


class AnswerFormat(Enum):
    """What a client asks for: free text, or a structured verdict (router/flow/verdict.py)."""

    TEXT = "text"
    VERDICT = "verdict"


@dataclass(frozen=True)
class Cost:
    """USD estimate from the pool's price table."""

    prompt_usd: float = 0.0
    completion_usd: float = 0.0

    @property
    def total_usd(self) -> float:
        return self.prompt_usd + self.completion_usd


@dataclass(frozen=True)
class Migration:
    """An answer moved mid-stream: `from_replica` failed after `tokens_kept` tokens (`chars_kept` characters)."""

    from_replica: str
    to_pool: str
    to_replica: str
    tokens_kept: int
    chars_kept: int


@dataclass(frozen=True)
class Route:
    """Which pool, engine and replica served a request, and which pools were tried first."""

    kind: RequestKind
    pool: str
    engine: str
    replica: str
    model: str
    fallback_from: tuple[str, ...] = ()
    migrations: tuple[Migration, ...] = ()  # replicas the answer left mid-stream, in order


@dataclass(frozen=True)
class AskInput:
    """An Ask request in domain terms."""

    question: str
    image: bytes = b""
    session_id: str = ""
    open_session: bool = False
    max_tokens: int = 0  # 0 = configured default
    temperature: float | None = None
    strict: bool = False
    request_id: str = ""
    deadline: float | None = None  # the client's deadline as a time.monotonic() value; None = none
    format: AnswerFormat = AnswerFormat.TEXT


@dataclass(frozen=True)
class DetectionEvent:
    detection: Detection
    session_id: str


@dataclass(frozen=True)
class DeltaEvent:
    text: str


@dataclass(frozen=True)
class DoneEvent:
    answer: str
    route: Route
    usage: Usage
    cost: Cost
    finish_reason: str
    degraded: bool
    session_id: str
    detection_ms: float
    ttft_ms: float
    total_ms: float
    notices: tuple[str, ...] = field(default_factory=tuple)
    image: ImageSent | None = None  # what reached the model
    verdict: Verdict | None = None  # AnswerFormat.VERDICT, when the answer parsed


@dataclass(frozen=True)
class Queued:
    """Progress: the chosen replica had no free slot; the request is `position` in its queue (1 = next)."""

    pool: str
    replica: str
    position: int


@dataclass(frozen=True)
class Dispatched:
    """Progress: the request was sent to `replica`; its first token is awaited."""

    pool: str
    replica: str
    attempt: int


@dataclass(frozen=True)
class Retrying:
    """Progress: an attempt on `replica` failed before its first token (`reason`); the pool is tried again."""

    pool: str
    replica: str
    reason: str
    next_attempt: int


@dataclass(frozen=True)
class FallingBack:
    """Progress: `from_pool` could not answer (`reason`); `to_pool` is tried next."""

    from_pool: str
    to_pool: str
    reason: str


ProgressEvent = Queued | Dispatched | Retrying | FallingBack
AskEvent = DetectionEvent | ProgressEvent | DeltaEvent | DoneEvent


class BatchState(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELED = "canceled"


class ItemStatus(Enum):
    PENDING = "pending"
    RUNNING = "running"  # stored only; reported to clients as PENDING
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True)
class BatchOptions:
    default_question: str = ""
    display_name: str = ""
    max_tokens: int = 0
    temperature: float | None = None
    detect_only: bool = False
    format: AnswerFormat = AnswerFormat.TEXT
    item_timeout_s: float = 0.0  # 0: the server's batch.item_timeout_s


@dataclass(frozen=True)
class BatchItemInput:
    image: bytes
    question: str = ""
    item_id: str = ""


@dataclass(frozen=True)
class JobView:
    """A job's state and counts."""

    job_id: str
    state: BatchState
    display_name: str
    total: int
    pending: int
    succeeded: int
    failed: int
    canceled: int
    created: float
    updated: float
    detect_only: bool


@dataclass(frozen=True)
class ItemResult:
    """One finished bulk item."""

    index: int
    item_id: str
    status: ItemStatus
    detection: Detection | None = None
    answer: str = ""
    route: Route | None = None
    usage: Usage = field(default_factory=Usage)
    cost: Cost = field(default_factory=Cost)
    error_code: str = ""  # a FAILED item's gRPC status code name, e.g. "INVALID_ARGUMENT"
    error_message: str = ""
    degraded: bool = False
    verdict: Verdict | None = None
    image: ImageSent | None = None
    error_reason: str = ""  # its RouterError reason ("" for results stored before reasons existed)
