"""The router's error tree; every class carries the gRPC status code a client receives.

RouterError (INTERNAL)
├── InvalidRequest (INVALID_ARGUMENT)        bad input: image, question, job, options
│   ├── BadImage                             empty, undecodable or unsupported image bytes
│   └── EngineRejected                       the engine refused the prompt (e.g. context too long)
├── NotFound (NOT_FOUND)                     unknown session or job id
├── FailedPrecondition (FAILED_PRECONDITION) expired/closed session, finished job
├── LimitExceeded (RESOURCE_EXHAUSTED)       a configured limit (image size, pixels, job size)
│   └── Overloaded                           every pool's admission queue is full (retry hint)
├── Unavailable (UNAVAILABLE)                no engine could answer (strict mode), router not ready
├── DeadlineExceeded (DEADLINE_EXCEEDED)     the client's deadline passed
├── Unauthenticated (UNAUTHENTICATED)        missing or wrong bearer token (server.auth_token_env)
└── ConfigError (INTERNAL)                   invalid configuration, raised at startup

Engines raise `engines.errors.EngineError`s (they never import the router); `from_engine_error`
maps them here at the dispatch boundary.
"""

from __future__ import annotations

import grpc

from engines.errors import EngineBadRequest, EngineError, EngineTimeout, EngineUnsupported


class RouterError(Exception):
    """Base of every error the router reports to a client."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s  # sent as trailing metadata `retry-after-ms`


class InvalidRequest(RouterError):
    """The request is malformed; retrying it unchanged will fail again."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class BadImage(InvalidRequest):
    """The image bytes are empty, undecodable or of an unsupported format."""


class EngineRejected(InvalidRequest):
    """The engine refused the request as malformed (e.g. the prompt is over its context length)."""


class NotFound(RouterError):
    """A session or job id the router does not know."""

    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(RouterError):
    """The object exists but is in a state that forbids the call (expired session, finished job)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class LimitExceeded(RouterError):
    """A configured limit was hit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Overloaded(LimitExceeded):
    """Interactive requests already fill every eligible pool's admission queue; retry shortly."""


class Unavailable(RouterError):
    """No engine could serve the request; safe to retry later."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(RouterError):
    """The client's deadline passed before the work finished."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(RouterError):
    """The call lacks the configured bearer token."""

    code = grpc.StatusCode.UNAUTHENTICATED


class ConfigError(RouterError):
    """The configuration is invalid; the message names the bad key."""


def from_engine_error(exc: EngineError, pool: str) -> RouterError:
    """Translate an engine failure into the status a client should see."""
    if isinstance(exc, EngineUnsupported):
        return FailedPrecondition(f"engine pool '{pool}' cannot serve this request: {exc}")
    if isinstance(exc, EngineBadRequest):
        return EngineRejected(f"engine pool '{pool}' rejected the request: {exc}")
    if isinstance(exc, EngineTimeout):
        return DeadlineExceeded(f"engine pool '{pool}' timed out: {exc}")
    return Unavailable(f"engine pool '{pool}' is unavailable: {exc}")
