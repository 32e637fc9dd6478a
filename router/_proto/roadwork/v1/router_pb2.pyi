import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_REASON_UNSPECIFIED: _ClassVar[ErrorReason]
    ERROR_REASON_INTERNAL_ERROR: _ClassVar[ErrorReason]
    ERROR_REASON_FIELD_MISSING: _ClassVar[ErrorReason]
    ERROR_REASON_OPTION_OUT_OF_RANGE: _ClassVar[ErrorReason]
    ERROR_REASON_QUESTION_TOO_LONG: _ClassVar[ErrorReason]
    ERROR_REASON_CONFLICTING_FIELDS: _ClassVar[ErrorReason]
    ERROR_REASON_REQUEST_MALFORMED: _ClassVar[ErrorReason]
    ERROR_REASON_IMAGE_UNDECODABLE: _ClassVar[ErrorReason]
    ERROR_REASON_IMAGE_FORMAT_UNSUPPORTED: _ClassVar[ErrorReason]
    ERROR_REASON_IMAGE_ASPECT_RATIO: _ClassVar[ErrorReason]
    ERROR_REASON_IMAGE_OVER_CONTEXT: _ClassVar[ErrorReason]
    ERROR_REASON_ENGINE_REJECTED: _ClassVar[ErrorReason]
    ERROR_REASON_SESSION_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_JOB_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_SESSION_CLOSED: _ClassVar[ErrorReason]
    ERROR_REASON_SESSION_EXPIRED: _ClassVar[ErrorReason]
    ERROR_REASON_JOB_FINISHED: _ClassVar[ErrorReason]
    ERROR_REASON_ENGINE_CANNOT_SERVE: _ClassVar[ErrorReason]
    ERROR_REASON_IMAGE_TOO_LARGE: _ClassVar[ErrorReason]
    ERROR_REASON_IMAGE_TOO_MANY_PIXELS: _ClassVar[ErrorReason]
    ERROR_REASON_BATCH_TOO_LARGE: _ClassVar[ErrorReason]
    ERROR_REASON_QUEUE_FULL: _ClassVar[ErrorReason]
    ERROR_REASON_ENGINE_UNAVAILABLE: _ClassVar[ErrorReason]
    ERROR_REASON_DEADLINE_EXCEEDED: _ClassVar[ErrorReason]
    ERROR_REASON_TOKEN_INVALID: _ClassVar[ErrorReason]
    ERROR_REASON_STORE_UNAVAILABLE: _ClassVar[ErrorReason]
    ERROR_REASON_DETECTION_UNAVAILABLE: _ClassVar[ErrorReason]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_ROADWORK: _ClassVar[Verdict]
    VERDICT_NO_ROADWORK: _ClassVar[Verdict]

class VoteStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VOTE_STATUS_UNSPECIFIED: _ClassVar[VoteStatus]
    VOTE_STATUS_OK: _ClassVar[VoteStatus]
    VOTE_STATUS_TIMED_OUT: _ClassVar[VoteStatus]
    VOTE_STATUS_FAILED: _ClassVar[VoteStatus]

class RequestKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_KIND_UNSPECIFIED: _ClassVar[RequestKind]
    REQUEST_KIND_MULTI_TURN: _ClassVar[RequestKind]
    REQUEST_KIND_BATCH: _ClassVar[RequestKind]
    REQUEST_KIND_SINGLE_SHOT: _ClassVar[RequestKind]

class AnswerFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANSWER_FORMAT_UNSPECIFIED: _ClassVar[AnswerFormat]
    ANSWER_FORMAT_TEXT: _ClassVar[AnswerFormat]
    ANSWER_FORMAT_VERDICT: _ClassVar[AnswerFormat]

class FinishReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_REASON_UNSPECIFIED: _ClassVar[FinishReason]
    FINISH_REASON_STOP: _ClassVar[FinishReason]
    FINISH_REASON_LENGTH: _ClassVar[FinishReason]
    FINISH_REASON_DEGRADED: _ClassVar[FinishReason]

class Engine(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENGINE_UNSPECIFIED: _ClassVar[Engine]
    ENGINE_EMBEDDED: _ClassVar[Engine]
    ENGINE_OPENAI_HTTP: _ClassVar[Engine]
    ENGINE_VLLM: _ClassVar[Engine]
    ENGINE_SGLANG: _ClassVar[Engine]
    ENGINE_LMDEPLOY: _ClassVar[Engine]
    ENGINE_DETECTIONS_ONLY: _ClassVar[Engine]

class BatchState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_STATE_UNSPECIFIED: _ClassVar[BatchState]
    BATCH_STATE_QUEUED: _ClassVar[BatchState]
    BATCH_STATE_RUNNING: _ClassVar[BatchState]
    BATCH_STATE_COMPLETED: _ClassVar[BatchState]
    BATCH_STATE_CANCELED: _ClassVar[BatchState]

class ItemStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ITEM_STATUS_UNSPECIFIED: _ClassVar[ItemStatus]
    ITEM_STATUS_PENDING: _ClassVar[ItemStatus]
    ITEM_STATUS_SUCCEEDED: _ClassVar[ItemStatus]
    ITEM_STATUS_FAILED: _ClassVar[ItemStatus]
    ITEM_STATUS_CANCELED: _ClassVar[ItemStatus]

class BreakerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BREAKER_STATE_UNSPECIFIED: _ClassVar[BreakerState]
    BREAKER_STATE_CLOSED: _ClassVar[BreakerState]
    BREAKER_STATE_OPEN: _ClassVar[BreakerState]
    BREAKER_STATE_HALF_OPEN: _ClassVar[BreakerState]

class RoutingPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTING_POLICY_UNSPECIFIED: _ClassVar[RoutingPolicy]
    ROUTING_POLICY_ROUND_ROBIN: _ClassVar[RoutingPolicy]
    ROUTING_POLICY_LEAST_LOADED: _ClassVar[RoutingPolicy]
    ROUTING_POLICY_POWER_OF_TWO: _ClassVar[RoutingPolicy]
    ROUTING_POLICY_SESSION_AFFINITY: _ClassVar[RoutingPolicy]
    ROUTING_POLICY_IMAGE_AFFINITY: _ClassVar[RoutingPolicy]
ERROR_REASON_UNSPECIFIED: ErrorReason
ERROR_REASON_INTERNAL_ERROR: ErrorReason
ERROR_REASON_FIELD_MISSING: ErrorReason
ERROR_REASON_OPTION_OUT_OF_RANGE: ErrorReason
ERROR_REASON_QUESTION_TOO_LONG: ErrorReason
ERROR_REASON_CONFLICTING_FIELDS: ErrorReason
ERROR_REASON_REQUEST_MALFORMED: ErrorReason
ERROR_REASON_IMAGE_UNDECODABLE: ErrorReason
ERROR_REASON_IMAGE_FORMAT_UNSUPPORTED: ErrorReason
ERROR_REASON_IMAGE_ASPECT_RATIO: ErrorReason
ERROR_REASON_IMAGE_OVER_CONTEXT: ErrorReason
ERROR_REASON_ENGINE_REJECTED: ErrorReason
ERROR_REASON_SESSION_NOT_FOUND: ErrorReason
ERROR_REASON_JOB_NOT_FOUND: ErrorReason
ERROR_REASON_SESSION_CLOSED: ErrorReason
ERROR_REASON_SESSION_EXPIRED: ErrorReason
ERROR_REASON_JOB_FINISHED: ErrorReason
ERROR_REASON_ENGINE_CANNOT_SERVE: ErrorReason
ERROR_REASON_IMAGE_TOO_LARGE: ErrorReason
ERROR_REASON_IMAGE_TOO_MANY_PIXELS: ErrorReason
ERROR_REASON_BATCH_TOO_LARGE: ErrorReason
ERROR_REASON_QUEUE_FULL: ErrorReason
ERROR_REASON_ENGINE_UNAVAILABLE: ErrorReason
ERROR_REASON_DEADLINE_EXCEEDED: ErrorReason
ERROR_REASON_TOKEN_INVALID: ErrorReason
ERROR_REASON_STORE_UNAVAILABLE: ErrorReason
ERROR_REASON_DETECTION_UNAVAILABLE: ErrorReason
VERDICT_UNSPECIFIED: Verdict
VERDICT_ROADWORK: Verdict
VERDICT_NO_ROADWORK: Verdict
VOTE_STATUS_UNSPECIFIED: VoteStatus
VOTE_STATUS_OK: VoteStatus
VOTE_STATUS_TIMED_OUT: VoteStatus
VOTE_STATUS_FAILED: VoteStatus
REQUEST_KIND_UNSPECIFIED: RequestKind
REQUEST_KIND_MULTI_TURN: RequestKind
REQUEST_KIND_BATCH: RequestKind
REQUEST_KIND_SINGLE_SHOT: RequestKind
ANSWER_FORMAT_UNSPECIFIED: AnswerFormat
ANSWER_FORMAT_TEXT: AnswerFormat
ANSWER_FORMAT_VERDICT: AnswerFormat
FINISH_REASON_UNSPECIFIED: FinishReason
FINISH_REASON_STOP: FinishReason
FINISH_REASON_LENGTH: FinishReason
FINISH_REASON_DEGRADED: FinishReason
ENGINE_UNSPECIFIED: Engine
ENGINE_EMBEDDED: Engine
ENGINE_OPENAI_HTTP: Engine
ENGINE_VLLM: Engine
ENGINE_SGLANG: Engine
ENGINE_LMDEPLOY: Engine
ENGINE_DETECTIONS_ONLY: Engine
BATCH_STATE_UNSPECIFIED: BatchState
BATCH_STATE_QUEUED: BatchState
BATCH_STATE_RUNNING: BatchState
BATCH_STATE_COMPLETED: BatchState
BATCH_STATE_CANCELED: BatchState
ITEM_STATUS_UNSPECIFIED: ItemStatus
ITEM_STATUS_PENDING: ItemStatus
ITEM_STATUS_SUCCEEDED: ItemStatus
ITEM_STATUS_FAILED: ItemStatus
ITEM_STATUS_CANCELED: ItemStatus
BREAKER_STATE_UNSPECIFIED: BreakerState
BREAKER_STATE_CLOSED: BreakerState
BREAKER_STATE_OPEN: BreakerState
BREAKER_STATE_HALF_OPEN: BreakerState
ROUTING_POLICY_UNSPECIFIED: RoutingPolicy
ROUTING_POLICY_ROUND_ROBIN: RoutingPolicy
ROUTING_POLICY_LEAST_LOADED: RoutingPolicy
ROUTING_POLICY_POWER_OF_TWO: RoutingPolicy
ROUTING_POLICY_SESSION_AFFINITY: RoutingPolicy
ROUTING_POLICY_IMAGE_AFFINITY: RoutingPolicy

class Box(_message.Message):
    __slots__ = ("class_name", "confidence", "x1", "y1", "x2", "y2", "roadwork_evidence")
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    X1_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    X2_FIELD_NUMBER: _ClassVar[int]
    Y2_FIELD_NUMBER: _ClassVar[int]
    ROADWORK_EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    class_name: str
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float
    roadwork_evidence: bool
    def __init__(self, class_name: _Optional[str] = ..., confidence: _Optional[float] = ..., x1: _Optional[float] = ..., y1: _Optional[float] = ..., x2: _Optional[float] = ..., y2: _Optional[float] = ..., roadwork_evidence: _Optional[bool] = ...) -> None: ...

class DetectorVote(_message.Message):
    __slots__ = ("detector", "roadwork", "confidence", "weight", "boxes", "status", "error", "latency")
    DETECTOR_FIELD_NUMBER: _ClassVar[int]
    ROADWORK_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    detector: str
    roadwork: bool
    confidence: float
    weight: float
    boxes: _containers.RepeatedCompositeFieldContainer[Box]
    status: VoteStatus
    error: str
    latency: _duration_pb2.Duration
    def __init__(self, detector: _Optional[str] = ..., roadwork: _Optional[bool] = ..., confidence: _Optional[float] = ..., weight: _Optional[float] = ..., boxes: _Optional[_Iterable[_Union[Box, _Mapping]]] = ..., status: _Optional[_Union[VoteStatus, str]] = ..., error: _Optional[str] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Detection(_message.Message):
    __slots__ = ("roadwork_probability", "verdict", "votes", "image_sha256", "image_width", "image_height", "cached", "latency", "notices", "roadwork_vote_share", "vote_confidence", "raw_score", "quorum_met")
    ROADWORK_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SHA256_FIELD_NUMBER: _ClassVar[int]
    IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    ROADWORK_VOTE_SHARE_FIELD_NUMBER: _ClassVar[int]
    VOTE_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    RAW_SCORE_FIELD_NUMBER: _ClassVar[int]
    QUORUM_MET_FIELD_NUMBER: _ClassVar[int]
    roadwork_probability: float
    verdict: Verdict
    votes: _containers.RepeatedCompositeFieldContainer[DetectorVote]
    image_sha256: str
    image_width: int
    image_height: int
    cached: bool
    latency: _duration_pb2.Duration
    notices: _containers.RepeatedScalarFieldContainer[str]
    roadwork_vote_share: float
    vote_confidence: float
    raw_score: float
    quorum_met: bool
    def __init__(self, roadwork_probability: _Optional[float] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., votes: _Optional[_Iterable[_Union[DetectorVote, _Mapping]]] = ..., image_sha256: _Optional[str] = ..., image_width: _Optional[int] = ..., image_height: _Optional[int] = ..., cached: _Optional[bool] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., notices: _Optional[_Iterable[str]] = ..., roadwork_vote_share: _Optional[float] = ..., vote_confidence: _Optional[float] = ..., raw_score: _Optional[float] = ..., quorum_met: _Optional[bool] = ...) -> None: ...

class DetectRequest(_message.Message):
    __slots__ = ("image",)
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    def __init__(self, image: _Optional[bytes] = ...) -> None: ...

class DetectResponse(_message.Message):
    __slots__ = ("detection",)
    DETECTION_FIELD_NUMBER: _ClassVar[int]
    detection: Detection
    def __init__(self, detection: _Optional[_Union[Detection, _Mapping]] = ...) -> None: ...

class GenerationOptions(_message.Message):
    __slots__ = ("max_tokens", "temperature")
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    max_tokens: int
    temperature: float
    def __init__(self, max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ...) -> None: ...

class AskRequest(_message.Message):
    __slots__ = ("image", "question", "session_id", "open_session", "generation", "strict", "format")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OPEN_SESSION_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    question: str
    session_id: str
    open_session: bool
    generation: GenerationOptions
    strict: bool
    format: AnswerFormat
    def __init__(self, image: _Optional[bytes] = ..., question: _Optional[str] = ..., session_id: _Optional[str] = ..., open_session: _Optional[bool] = ..., generation: _Optional[_Union[GenerationOptions, _Mapping]] = ..., strict: _Optional[bool] = ..., format: _Optional[_Union[AnswerFormat, str]] = ...) -> None: ...

class AskDetectionEvent(_message.Message):
    __slots__ = ("detection", "session_id")
    DETECTION_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    detection: Detection
    session_id: str
    def __init__(self, detection: _Optional[_Union[Detection, _Mapping]] = ..., session_id: _Optional[str] = ...) -> None: ...

class AskDeltaEvent(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "cached_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cached_tokens: _Optional[int] = ...) -> None: ...

class Cost(_message.Message):
    __slots__ = ("prompt_usd", "completion_usd", "total_usd")
    PROMPT_USD_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_USD_FIELD_NUMBER: _ClassVar[int]
    TOTAL_USD_FIELD_NUMBER: _ClassVar[int]
    prompt_usd: float
    completion_usd: float
    total_usd: float
    def __init__(self, prompt_usd: _Optional[float] = ..., completion_usd: _Optional[float] = ..., total_usd: _Optional[float] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("kind", "pool", "engine", "replica", "model", "fallback_from", "migrations")
    KIND_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FROM_FIELD_NUMBER: _ClassVar[int]
    MIGRATIONS_FIELD_NUMBER: _ClassVar[int]
    kind: RequestKind
    pool: str
    engine: Engine
    replica: str
    model: str
    fallback_from: _containers.RepeatedScalarFieldContainer[str]
    migrations: _containers.RepeatedCompositeFieldContainer[Migration]
    def __init__(self, kind: _Optional[_Union[RequestKind, str]] = ..., pool: _Optional[str] = ..., engine: _Optional[_Union[Engine, str]] = ..., replica: _Optional[str] = ..., model: _Optional[str] = ..., fallback_from: _Optional[_Iterable[str]] = ..., migrations: _Optional[_Iterable[_Union[Migration, _Mapping]]] = ...) -> None: ...

class Migration(_message.Message):
    __slots__ = ("from_replica", "to_pool", "to_replica", "tokens_kept", "chars_kept")
    FROM_REPLICA_FIELD_NUMBER: _ClassVar[int]
    TO_POOL_FIELD_NUMBER: _ClassVar[int]
    TO_REPLICA_FIELD_NUMBER: _ClassVar[int]
    TOKENS_KEPT_FIELD_NUMBER: _ClassVar[int]
    CHARS_KEPT_FIELD_NUMBER: _ClassVar[int]
    from_replica: str
    to_pool: str
    to_replica: str
    tokens_kept: int
    chars_kept: int
    def __init__(self, from_replica: _Optional[str] = ..., to_pool: _Optional[str] = ..., to_replica: _Optional[str] = ..., tokens_kept: _Optional[int] = ..., chars_kept: _Optional[int] = ...) -> None: ...

class ImageSent(_message.Message):
    __slots__ = ("width", "height", "image_tokens", "image_tokens_reported", "bytes", "resized", "source_width", "source_height")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_TOKENS_REPORTED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    RESIZED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    SOURCE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    image_tokens: int
    image_tokens_reported: bool
    bytes: int
    resized: bool
    source_width: int
    source_height: int
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., image_tokens: _Optional[int] = ..., image_tokens_reported: _Optional[bool] = ..., bytes: _Optional[int] = ..., resized: _Optional[bool] = ..., source_width: _Optional[int] = ..., source_height: _Optional[int] = ...) -> None: ...

class ObjectCount(_message.Message):
    __slots__ = ("type", "count")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    type: str
    count: int
    def __init__(self, type: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class AnswerVerdict(_message.Message):
    __slots__ = ("roadwork", "active", "objects", "lanes_affected", "confidence", "merged_probability", "merged_roadwork", "agrees_with_detection")
    ROADWORK_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    LANES_AFFECTED_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    MERGED_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    MERGED_ROADWORK_FIELD_NUMBER: _ClassVar[int]
    AGREES_WITH_DETECTION_FIELD_NUMBER: _ClassVar[int]
    roadwork: bool
    active: bool
    objects: _containers.RepeatedCompositeFieldContainer[ObjectCount]
    lanes_affected: int
    confidence: float
    merged_probability: float
    merged_roadwork: bool
    agrees_with_detection: bool
    def __init__(self, roadwork: _Optional[bool] = ..., active: _Optional[bool] = ..., objects: _Optional[_Iterable[_Union[ObjectCount, _Mapping]]] = ..., lanes_affected: _Optional[int] = ..., confidence: _Optional[float] = ..., merged_probability: _Optional[float] = ..., merged_roadwork: _Optional[bool] = ..., agrees_with_detection: _Optional[bool] = ...) -> None: ...

class AskDoneEvent(_message.Message):
    __slots__ = ("answer", "route", "usage", "cost", "finish_reason", "degraded", "notices", "session_id", "detection_time", "time_to_first_token", "total_time", "image", "verdict")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    DETECTION_TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TIME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    answer: str
    route: Route
    usage: Usage
    cost: Cost
    finish_reason: FinishReason
    degraded: bool
    notices: _containers.RepeatedScalarFieldContainer[str]
    session_id: str
    detection_time: _duration_pb2.Duration
    time_to_first_token: _duration_pb2.Duration
    total_time: _duration_pb2.Duration
    image: ImageSent
    verdict: AnswerVerdict
    def __init__(self, answer: _Optional[str] = ..., route: _Optional[_Union[Route, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., cost: _Optional[_Union[Cost, _Mapping]] = ..., finish_reason: _Optional[_Union[FinishReason, str]] = ..., degraded: _Optional[bool] = ..., notices: _Optional[_Iterable[str]] = ..., session_id: _Optional[str] = ..., detection_time: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., time_to_first_token: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., total_time: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., image: _Optional[_Union[ImageSent, _Mapping]] = ..., verdict: _Optional[_Union[AnswerVerdict, _Mapping]] = ...) -> None: ...

class AskResponse(_message.Message):
    __slots__ = ("detected", "delta", "done", "progress")
    DETECTED_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    detected: AskDetectionEvent
    delta: AskDeltaEvent
    done: AskDoneEvent
    progress: AskProgressEvent
    def __init__(self, detected: _Optional[_Union[AskDetectionEvent, _Mapping]] = ..., delta: _Optional[_Union[AskDeltaEvent, _Mapping]] = ..., done: _Optional[_Union[AskDoneEvent, _Mapping]] = ..., progress: _Optional[_Union[AskProgressEvent, _Mapping]] = ...) -> None: ...

class AskProgressEvent(_message.Message):
    __slots__ = ("queued", "dispatched", "retrying", "falling_back")
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    DISPATCHED_FIELD_NUMBER: _ClassVar[int]
    RETRYING_FIELD_NUMBER: _ClassVar[int]
    FALLING_BACK_FIELD_NUMBER: _ClassVar[int]
    queued: QueuedProgress
    dispatched: DispatchedProgress
    retrying: RetryingProgress
    falling_back: FallingBackProgress
    def __init__(self, queued: _Optional[_Union[QueuedProgress, _Mapping]] = ..., dispatched: _Optional[_Union[DispatchedProgress, _Mapping]] = ..., retrying: _Optional[_Union[RetryingProgress, _Mapping]] = ..., falling_back: _Optional[_Union[FallingBackProgress, _Mapping]] = ...) -> None: ...

class QueuedProgress(_message.Message):
    __slots__ = ("pool", "replica", "position")
    POOL_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    pool: str
    replica: str
    position: int
    def __init__(self, pool: _Optional[str] = ..., replica: _Optional[str] = ..., position: _Optional[int] = ...) -> None: ...

class DispatchedProgress(_message.Message):
    __slots__ = ("pool", "replica", "attempt")
    POOL_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    pool: str
    replica: str
    attempt: int
    def __init__(self, pool: _Optional[str] = ..., replica: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class RetryingProgress(_message.Message):
    __slots__ = ("pool", "replica", "reason", "next_attempt")
    POOL_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    pool: str
    replica: str
    reason: str
    next_attempt: int
    def __init__(self, pool: _Optional[str] = ..., replica: _Optional[str] = ..., reason: _Optional[str] = ..., next_attempt: _Optional[int] = ...) -> None: ...

class FallingBackProgress(_message.Message):
    __slots__ = ("from_pool", "reason", "to_pool")
    FROM_POOL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TO_POOL_FIELD_NUMBER: _ClassVar[int]
    from_pool: str
    reason: str
    to_pool: str
    def __init__(self, from_pool: _Optional[str] = ..., reason: _Optional[str] = ..., to_pool: _Optional[str] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("session_id", "image_sha256", "turns", "created_at", "expires_at")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SHA256_FIELD_NUMBER: _ClassVar[int]
    TURNS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    image_sha256: str
    turns: int
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, session_id: _Optional[str] = ..., image_sha256: _Optional[str] = ..., turns: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateSessionRequest(_message.Message):
    __slots__ = ("image", "ttl")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    ttl: _duration_pb2.Duration
    def __init__(self, image: _Optional[bytes] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CreateSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class CloseSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class CloseSessionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BatchOptions(_message.Message):
    __slots__ = ("default_question", "display_name", "generation", "detect_only", "format", "item_timeout")
    DEFAULT_QUESTION_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    DETECT_ONLY_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    ITEM_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    default_question: str
    display_name: str
    generation: GenerationOptions
    detect_only: bool
    format: AnswerFormat
    item_timeout: _duration_pb2.Duration
    def __init__(self, default_question: _Optional[str] = ..., display_name: _Optional[str] = ..., generation: _Optional[_Union[GenerationOptions, _Mapping]] = ..., detect_only: _Optional[bool] = ..., format: _Optional[_Union[AnswerFormat, str]] = ..., item_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class BatchItem(_message.Message):
    __slots__ = ("image", "question", "item_id")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    question: str
    item_id: str
    def __init__(self, image: _Optional[bytes] = ..., question: _Optional[str] = ..., item_id: _Optional[str] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("options", "item")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    options: BatchOptions
    item: BatchItem
    def __init__(self, options: _Optional[_Union[BatchOptions, _Mapping]] = ..., item: _Optional[_Union[BatchItem, _Mapping]] = ...) -> None: ...

class BatchJob(_message.Message):
    __slots__ = ("job_id", "state", "display_name", "total", "pending", "succeeded", "failed", "canceled", "created_at", "updated_at", "detect_only")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    DETECT_ONLY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: BatchState
    display_name: str
    total: int
    pending: int
    succeeded: int
    failed: int
    canceled: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    detect_only: bool
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[BatchState, str]] = ..., display_name: _Optional[str] = ..., total: _Optional[int] = ..., pending: _Optional[int] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., canceled: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detect_only: _Optional[bool] = ...) -> None: ...

class SubmitBatchResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: BatchJob
    def __init__(self, job: _Optional[_Union[BatchJob, _Mapping]] = ...) -> None: ...

class GetBatchRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetBatchResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: BatchJob
    def __init__(self, job: _Optional[_Union[BatchJob, _Mapping]] = ...) -> None: ...

class ListBatchesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: BatchState
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[BatchState, str]] = ...) -> None: ...

class ListBatchesResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[BatchJob]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[BatchJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchBatchRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchBatchResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: BatchJob
    def __init__(self, job: _Optional[_Union[BatchJob, _Mapping]] = ...) -> None: ...

class ListBatchResultsRequest(_message.Message):
    __slots__ = ("job_id", "offset", "limit", "follow")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    offset: int
    limit: int
    follow: bool
    def __init__(self, job_id: _Optional[str] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class BatchItemResult(_message.Message):
    __slots__ = ("index", "item_id", "status", "detection", "answer", "route", "usage", "cost", "degraded", "verdict", "image", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETECTION_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    item_id: str
    status: ItemStatus
    detection: Detection
    answer: str
    route: Route
    usage: Usage
    cost: Cost
    degraded: bool
    verdict: AnswerVerdict
    image: ImageSent
    error: _status_pb2.Status
    def __init__(self, index: _Optional[int] = ..., item_id: _Optional[str] = ..., status: _Optional[_Union[ItemStatus, str]] = ..., detection: _Optional[_Union[Detection, _Mapping]] = ..., answer: _Optional[str] = ..., route: _Optional[_Union[Route, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., cost: _Optional[_Union[Cost, _Mapping]] = ..., degraded: _Optional[bool] = ..., verdict: _Optional[_Union[AnswerVerdict, _Mapping]] = ..., image: _Optional[_Union[ImageSent, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class ListBatchResultsResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: BatchItemResult
    def __init__(self, result: _Optional[_Union[BatchItemResult, _Mapping]] = ...) -> None: ...

class CancelBatchRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelBatchResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: BatchJob
    def __init__(self, job: _Optional[_Union[BatchJob, _Mapping]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReplicaStatus(_message.Message):
    __slots__ = ("name", "healthy", "breaker", "breaker_retry_in", "in_flight", "queued_interactive", "queued_batch", "load", "bulk_in_flight", "bulk_window", "pools")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    BREAKER_FIELD_NUMBER: _ClassVar[int]
    BREAKER_RETRY_IN_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_INTERACTIVE_FIELD_NUMBER: _ClassVar[int]
    QUEUED_BATCH_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    BULK_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    BULK_WINDOW_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    name: str
    healthy: bool
    breaker: BreakerState
    breaker_retry_in: _duration_pb2.Duration
    in_flight: int
    queued_interactive: int
    queued_batch: int
    load: int
    bulk_in_flight: int
    bulk_window: int
    pools: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., healthy: _Optional[bool] = ..., breaker: _Optional[_Union[BreakerState, str]] = ..., breaker_retry_in: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., in_flight: _Optional[int] = ..., queued_interactive: _Optional[int] = ..., queued_batch: _Optional[int] = ..., load: _Optional[int] = ..., bulk_in_flight: _Optional[int] = ..., bulk_window: _Optional[int] = ..., pools: _Optional[_Iterable[str]] = ...) -> None: ...

class PoolStatus(_message.Message):
    __slots__ = ("name", "engine", "policy", "breaker", "breaker_retry_in", "replicas")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    BREAKER_FIELD_NUMBER: _ClassVar[int]
    BREAKER_RETRY_IN_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    name: str
    engine: Engine
    policy: RoutingPolicy
    breaker: BreakerState
    breaker_retry_in: _duration_pb2.Duration
    replicas: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., engine: _Optional[_Union[Engine, str]] = ..., policy: _Optional[_Union[RoutingPolicy, str]] = ..., breaker: _Optional[_Union[BreakerState, str]] = ..., breaker_retry_in: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., replicas: _Optional[_Iterable[str]] = ...) -> None: ...

class RoutingRule(_message.Message):
    __slots__ = ("kind", "pools")
    KIND_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    kind: RequestKind
    pools: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kind: _Optional[_Union[RequestKind, str]] = ..., pools: _Optional[_Iterable[str]] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("serving", "pools", "routing", "replicas")
    SERVING_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    serving: bool
    pools: _containers.RepeatedCompositeFieldContainer[PoolStatus]
    routing: _containers.RepeatedCompositeFieldContainer[RoutingRule]
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaStatus]
    def __init__(self, serving: _Optional[bool] = ..., pools: _Optional[_Iterable[_Union[PoolStatus, _Mapping]]] = ..., routing: _Optional[_Iterable[_Union[RoutingRule, _Mapping]]] = ..., replicas: _Optional[_Iterable[_Union[ReplicaStatus, _Mapping]]] = ...) -> None: ...
