"""A circuit breaker per engine pool and per replica.

CLOSED ──(consecutive failures, or failure rate over a window)──> OPEN
OPEN ──(cooldown passed: the next `allow()`)──> HALF_OPEN
HALF_OPEN ──(`probe_successes` probes succeed)──> CLOSED
HALF_OPEN ──(any probe fails)──> OPEN (a fresh cooldown)
any ──(`reset()`: outside evidence the target is back, e.g. it passes its health check again)──> CLOSED

Callers ask `allow()` before a request (it claims a probe slot in HALF_OPEN) and report the outcome
with `record(ok)`, or `release()` when the request ended without telling anything about the engine
(the client cancelled, the request was rejected as bad input). Only engine-side failures are
recorded as failures: the dispatcher never records a client error against a breaker.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable

from router.config import BreakerConfig


class State(enum.IntEnum):
    """Breaker states; the value is what the `roadwork_breaker_state` gauge shows."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


Transition = Callable[[str, State, State], None]


class CircuitBreaker:
    """Counts one target's outcomes; `allow()` says whether a request may go to it now."""

    def __init__(
        self,
        name: str,
        config: BreakerConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_transition: Transition | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._clock = clock
        self._on_transition = on_transition
        self.state = State.CLOSED
        self.opened_at = 0.0
        self._consecutive = 0
        self._window: deque[tuple[float, bool]] = deque()
        self._failures = 0  # in the window, kept as it moves (a sum per outcome cost 7 % of a busy router)
        self._probes = 0  # probes in flight (HALF_OPEN)
        self._probe_ok = 0

    def _to(self, state: State) -> None:
        old, self.state = self.state, state
        if state is State.OPEN:
            self.opened_at = self._clock()
        self._consecutive = 0
        self._window.clear()
        self._failures = 0
        self._probes = self._probe_ok = 0
        if self._on_transition is not None and old is not state:
            self._on_transition(self.name, old, state)

    def reset(self) -> None:
        """Close at once, forgetting past failures: the target is known to be back."""
        if self.state is not State.CLOSED:
            self._to(State.CLOSED)

    def admits(self) -> bool:
        """Whether `allow()` would say yes now (no side effects): for filtering candidates."""
        if not self.config.enabled or self.state is State.CLOSED:
            return True
        if self.state is State.OPEN:
            return self._clock() - self.opened_at >= self.config.cooldown_s
        return self._probes < self.config.half_open_probes

    def allow(self) -> bool:
        """May a request go now? In HALF_OPEN this claims one of the probe slots."""
        if not self.admits():
            return False
        if self.config.enabled and self.state is State.OPEN:
            self._to(State.HALF_OPEN)
        if self.state is State.HALF_OPEN:
            self._probes += 1
        return True

    def release(self) -> None:
        """The request allowed last ended without an engine outcome (cancelled, bad input)."""
        if self.state is State.HALF_OPEN and self._probes > 0:
            self._probes -= 1

    def settle(self, ok: bool | None) -> None:
        """`record(ok)`, or `release()` when the request ended without an engine outcome (None)."""
        if ok is None:
            self.release()
        else:
            self.record(ok)

    def record(self, ok: bool) -> None:
        """Report an allowed request's engine outcome."""
        if not self.config.enabled:
            return
        if self.state is State.HALF_OPEN:
            self._probes = max(0, self._probes - 1)
            if not ok:
                self._to(State.OPEN)
                return
            self._probe_ok += 1
            if self._probe_ok >= self.config.probe_successes:
                self._to(State.CLOSED)
            return
        if self.state is State.OPEN:  # a request allowed before the breaker opened finished late
            return
        self._consecutive = 0 if ok else self._consecutive + 1
        now = self._clock()
        self._window.append((now, ok))
        self._failures += not ok
        while self._window and now - self._window[0][0] > self.config.window_s:
            self._failures -= not self._window.popleft()[1]
        if self._consecutive >= self.config.consecutive_failures or self._rate_tripped():
            self._to(State.OPEN)

    def _rate_tripped(self) -> bool:
        c = self.config
        if len(self._window) < c.min_requests:
            return False
        return self._failures / len(self._window) >= c.failure_rate

    def retry_in_s(self) -> float:
        """Seconds until an OPEN breaker lets a probe through (0 when it admits now)."""
        if self.state is not State.OPEN:
            return 0.0
        return max(0.0, self.config.cooldown_s - (self._clock() - self.opened_at))
