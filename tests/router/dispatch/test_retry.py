"""Retry decision, delay and stop (tenacity) for engine calls before the first token."""

from __future__ import annotations

import time

import pytest
from tenacity import RetryCallState

from engines.errors import EngineBadRequest, EngineOverloaded, EngineTimeout, EngineUnavailable
from router.config import RetryConfig
from router.dispatch.retry import backoff, retryable, retrying, stop_before_deadline


def test_only_engine_side_failures_are_retried() -> None:
    assert retryable(EngineUnavailable("refused")) and retryable(EngineTimeout("slow"))
    assert retryable(EngineOverloaded("429"))
    assert not retryable(EngineBadRequest("context too long"))
    assert not retryable(ValueError("bug"))


def test_backoff_grows_and_is_capped() -> None:
    wait = backoff(RetryConfig(initial_backoff_s=0.1, max_backoff_s=0.5, jitter_s=0.0))
    delays = []
    for n in range(1, 6):
        state = RetryCallState(None, None, (), {})
        state.attempt_number = n
        delays.append(wait(state))
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


def test_stop_before_deadline() -> None:
    state = RetryCallState(None, None, (), {})
    state.upcoming_sleep = 0.5
    assert not stop_before_deadline(None)(state)
    assert not stop_before_deadline(time.monotonic() + 5)(state)
    assert stop_before_deadline(time.monotonic() + 0.2)(state)


async def test_the_loop_retries_then_reraises_the_last_error() -> None:
    calls = 0
    with pytest.raises(EngineUnavailable, match="3"):
        async for attempt in retrying(RetryConfig(max_attempts=3, initial_backoff_s=0, jitter_s=0), None):
            with attempt:
                calls += 1
                raise EngineUnavailable(str(calls))
    assert calls == 3
    calls = 0
    with pytest.raises(EngineBadRequest):
        async for attempt in retrying(RetryConfig(max_attempts=3), None):
            with attempt:
                calls += 1
                raise EngineBadRequest("bad")
    assert calls == 1
