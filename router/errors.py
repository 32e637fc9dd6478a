"""The router's error tree; every class a client can receive carries its gRPC status code and its
machine-readable reason (`google.rpc.ErrorInfo.reason`: proto enum `ErrorReason` less its prefix).

RouterError (INTERNAL)                       INTERNAL_ERROR            a bug in the router
├── InvalidRequest (INVALID_ARGUMENT)                                  bad input: the same request fails again
│   ├── MissingField                         FIELD_MISSING             image, question, session_id, job_id, item
│   ├── OptionOutOfRange                     OPTION_OUT_OF_RANGE       max_tokens, temperature, format, item_timeout
│   ├── QuestionTooLong                      QUESTION_TOO_LONG         over limits.max_question_chars
│   ├── ConflictingFields                    CONFLICTING_FIELDS        open_session together with session_id
│   ├── MalformedRequest                     REQUEST_MALFORMED         bytes that do not parse; misplaced options
│   ├── BadImage                             IMAGE_UNDECODABLE         corrupt or truncated image bytes
│   │   └── UnsupportedImage                 IMAGE_FORMAT_UNSUPPORTED  a format other than JPEG, PNG, WebP
│   ├── ImageAspectRatio                     IMAGE_ASPECT_RATIO        more elongated than 200:1
│   ├── ImageOverContext                     IMAGE_OVER_CONTEXT        its tokens do not fit any pool's model
│   └── EngineRejected                       ENGINE_REJECTED           the engine refused the prompt
├── NotFound (NOT_FOUND)
│   ├── SessionNotFound                      SESSION_NOT_FOUND
│   └── JobNotFound                          JOB_NOT_FOUND
├── FailedPrecondition (FAILED_PRECONDITION)
│   ├── SessionClosed                        SESSION_CLOSED
│   ├── SessionExpired                       SESSION_EXPIRED
│   ├── JobFinished                          JOB_FINISHED              CancelBatch on a COMPLETED or CANCELED job
│   └── EngineCannotServe                    ENGINE_CANNOT_SERVE       no model of the pools can take this request
├── LimitExceeded (RESOURCE_EXHAUSTED)
│   ├── ImageTooLarge                        IMAGE_TOO_LARGE           over limits.max_image_bytes
│   ├── ImageTooManyPixels                   IMAGE_TOO_MANY_PIXELS     over limits.max_image_pixels
│   ├── JobTooLarge                          BATCH_TOO_LARGE           over limits.max_batch_items
│   └── Overloaded                           QUEUE_FULL                every eligible queue is full (retry hint)
├── Unavailable (UNAVAILABLE)                ENGINE_UNAVAILABLE        no engine could answer
│   ├── StoreUnavailable                     STORE_UNAVAILABLE         PostgreSQL (storage.url) unreachable
│   └── DetectionUnavailable                 DETECTION_UNAVAILABLE     the shared detection process is restarting
├── DeadlineExceeded (DEADLINE_EXCEEDED)     DEADLINE_EXCEEDED
├── Unauthenticated (UNAUTHENTICATED)        TOKEN_INVALID             missing or wrong bearer token
└── ConfigError (INTERNAL)                   INTERNAL_ERROR            invalid configuration, raised at start-up

The four groups (InvalidRequest, NotFound, FailedPrecondition, LimitExceeded) carry a code but no
reason of their own: code raises the leaves (tests/router/api/test_error_details.py checks it). `field`
is the request field at fault as the proto spells it (e.g. "options.temperature"), `metadata` the
ErrorInfo metadata. Engines raise `engines.errors.EngineError`s (they never import the router);
`from_engine_error` maps them here at the dispatch boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import grpc

from engines.errors import EngineBadRequest, EngineError, EngineTimeout, EngineUnsupported


class RouterError(Exception):
    """Base of every error the router reports to a client."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    reason: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        field: str = "",
        retry_after_s: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.retry_after_s = retry_after_s  # google.rpc.RetryInfo, and trailing metadata `retry-after-ms`
        self.metadata = dict(metadata or {})


class InvalidRequest(RouterError):
    """The request is malformed; retrying it unchanged will fail again."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class MissingField(InvalidRequest):
    """A required field is empty."""

    reason = "FIELD_MISSING"


class OptionOutOfRange(InvalidRequest):
    """An option is outside the range the server takes."""

    reason = "OPTION_OUT_OF_RANGE"


class QuestionTooLong(InvalidRequest):
    """The question is over `limits.max_question_chars` characters."""

    reason = "QUESTION_TOO_LONG"


class ConflictingFields(InvalidRequest):
    """Two fields that exclude each other are both set."""

    reason = "CONFLICTING_FIELDS"


class MalformedRequest(InvalidRequest):
    """The request bytes do not parse, or a stream's messages are out of order."""

    reason = "REQUEST_MALFORMED"


class BadImage(InvalidRequest):
    """The image bytes are corrupt, truncated or of no format the router reads."""

    reason = "IMAGE_UNDECODABLE"


class UnsupportedImage(BadImage):
    """The image is of a format other than JPEG, PNG or WebP."""

    reason = "IMAGE_FORMAT_UNSUPPORTED"


class ImageAspectRatio(InvalidRequest):
    """The image is too elongated for the models' processors."""

    reason = "IMAGE_ASPECT_RATIO"


class ImageOverContext(InvalidRequest):
    """The image's tokens at each pool's pixel budget do not fit that pool's model context."""

    reason = "IMAGE_OVER_CONTEXT"


class EngineRejected(InvalidRequest):
    """The engine refused the request as malformed (e.g. the prompt is over its context length)."""

    reason = "ENGINE_REJECTED"


class NotFound(RouterError):
    """A session or job id the router does not know."""

    code = grpc.StatusCode.NOT_FOUND


class SessionNotFound(NotFound):
    """No session has this id."""

    reason = "SESSION_NOT_FOUND"


class JobNotFound(NotFound):
    """No bulk job has this id."""

    reason = "JOB_NOT_FOUND"


class FailedPrecondition(RouterError):
    """The object exists but is in a state that forbids the call (expired session, finished job)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class SessionClosed(FailedPrecondition):
    """The session was closed."""

    reason = "SESSION_CLOSED"


class SessionExpired(FailedPrecondition):
    """The session was idle past its time-to-live."""

    reason = "SESSION_EXPIRED"


class JobFinished(FailedPrecondition):
    """The bulk job already ended (COMPLETED or CANCELED)."""

    reason = "JOB_FINISHED"


class EngineCannotServe(FailedPrecondition):
    """The engine pool's model cannot take this request (e.g. an image on a text-only model)."""

    reason = "ENGINE_CANNOT_SERVE"


class LimitExceeded(RouterError):
    """A configured limit was hit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class ImageTooLarge(LimitExceeded):
    """The image is over `limits.max_image_bytes`."""

    reason = "IMAGE_TOO_LARGE"


class ImageTooManyPixels(LimitExceeded):
    """The image is over `limits.max_image_pixels`."""

    reason = "IMAGE_TOO_MANY_PIXELS"


class JobTooLarge(LimitExceeded):
    """The bulk job is over `limits.max_batch_items`."""

    reason = "BATCH_TOO_LARGE"


class Overloaded(LimitExceeded):
    """Interactive requests already fill every eligible pool's admission queue; retry shortly."""

    reason = "QUEUE_FULL"


class Unavailable(RouterError):
    """No engine could serve the request; safe to retry later."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "ENGINE_UNAVAILABLE"


class StoreUnavailable(Unavailable):
    """The session and job store cannot be reached (PostgreSQL lost); nothing stored is lost."""

    reason = "STORE_UNAVAILABLE"


class DetectionUnavailable(Unavailable):
    """The host's shared detection process (`detection.process`) is down and being restarted; retry
    shortly. Metadata: stage = "detection"."""

    reason = "DETECTION_UNAVAILABLE"


class DeadlineExceeded(RouterError):
    """The client's deadline passed before the work finished."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class Unauthenticated(RouterError):
    """The call lacks the configured bearer token."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "TOKEN_INVALID"


class ConfigError(RouterError):
    """The configuration is invalid; the message names the bad key."""

    reason = "INTERNAL_ERROR"


def shown(value: str, limit: int = 100) -> str:
    """A client's value (an id) cut to `limit` characters for a message: trailers have a size limit."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def from_engine_error(exc: EngineError, pool: str) -> RouterError:
    """Translate an engine failure into the status a client should see."""
    meta = {"pool": pool}
    if isinstance(exc, EngineUnsupported):
        return EngineCannotServe(f"engine pool '{pool}' cannot serve this request: {exc}", metadata=meta)
    if isinstance(exc, EngineBadRequest):
        return EngineRejected(f"engine pool '{pool}' rejected the request: {exc}", metadata=meta)
    if isinstance(exc, EngineTimeout):
        return DeadlineExceeded(f"engine pool '{pool}' timed out: {exc}", metadata=meta)
    return Unavailable(f"engine pool '{pool}' is unavailable: {exc}", metadata=meta)
