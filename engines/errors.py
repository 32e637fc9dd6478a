"""Engine failures, translated from each client's own exceptions at the engine boundary.

EngineError                    any failure talking to an engine
├── EngineUnavailable          connection refused/reset, 5xx, engine not started   (retryable)
│   └── EngineOverloaded       429 / 503 "too busy"                                 (retryable)
├── EngineTimeout              no answer within the request's time budget          (retryable)
├── EngineBadRequest           4xx other than 429: the request itself is wrong     (not retryable)
└── EngineUnsupported          the model cannot do what the request needs (a text-only model sent an
                               image): no replica of this engine can, another pool may (not retryable)
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


class EngineUnsupported(EngineError):
    """The served model lacks a capability the request needs (e.g. images for a text-only model)."""

    retryable = False
