"""Engine failures, translated from each client's own exceptions at the engine boundary.

EngineError                    any failure talking to an engine
├── EngineUnavailable          connection refused/reset, 5xx, engine not started   (retryable)
│   └── EngineOverloaded       429 / 503 "too busy"                                 (retryable)
├── EngineTimeout              no answer within the request's time budget          (retryable)
└── EngineBadRequest           4xx other than 429: the request itself is wrong     (not retryable)
"""


class EngineError(Exception):
    """Base of engine failures; `retryable` says whether another try (or replica) may succeed."""

    retryable = True


class EngineUnavailable(EngineError):
    """The engine could not be reached or failed on its side."""


class EngineOverloaded(EngineUnavailable):
    """The engine refused work because it is saturated."""


class EngineTimeout(EngineError):
    """The engine did not answer in time."""


class EngineBadRequest(EngineError):
    """The engine rejected the request as invalid; the same request will fail everywhere."""

    retryable = False
