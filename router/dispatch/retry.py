"""Retries of an engine call before its first token, with tenacity: decision, delay and stop kept apart."""

from __future__ import annotations

import time

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from engines.errors import EngineError
from router.config import RetryConfig


def retryable(exc: BaseException) -> bool:
    """Decision: only engine-side failures another try may fix (never a bad request)."""
    return isinstance(exc, EngineError) and exc.retryable


def backoff(config: RetryConfig) -> wait_base:
    """Delay: exponential from `initial_backoff_s`, capped at `max_backoff_s`, plus random jitter."""
    c = config
    return wait_exponential_jitter(multiplier=c.initial_backoff_s, max=c.max_backoff_s, jitter=c.jitter_s)


class stop_before_deadline(stop_base):  # named like tenacity's own stop strategies
    """Stop: give up when the next sleep would end past the deadline (a `time.monotonic()` value)."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        if self.deadline is None:
            return False
        return time.monotonic() + (retry_state.upcoming_sleep or 0.0) >= self.deadline


def retrying(config: RetryConfig, deadline: float | None) -> AsyncRetrying:
    """Loop: up to `max_attempts` tries, bounded by the deadline; the last error is re-raised."""
    return AsyncRetrying(
        stop=stop_after_attempt(config.max_attempts) | stop_before_deadline(deadline),
        wait=backoff(config),
        retry=retry_if_exception(retryable),
        reraise=True,
    )
