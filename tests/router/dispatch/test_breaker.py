"""Circuit breaker transitions, on a fake clock."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.config import BreakerConfig
from router.dispatch.breaker import CircuitBreaker, State


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(**kw: object) -> tuple[CircuitBreaker, Clock, list[tuple[str, str]]]:
    clock, seen = Clock(), []
    cfg = BreakerConfig.model_validate({"consecutive_failures": 3, "cooldown_s": 5, "probe_successes": 2, **kw})
    b = CircuitBreaker("r", cfg, clock=clock, on_transition=lambda _n, old, new: seen.append((old.name, new.name)))
    return b, clock, seen


def test_consecutive_failures_open_and_a_success_resets_the_count() -> None:
    b, _, seen = make()
    for ok in (False, False, True, False, False):
        assert b.allow()
        b.record(ok)
    assert b.state is State.CLOSED
    b.record(False)
    assert b.state is State.OPEN and not b.allow() and not b.admits()
    assert seen == [("CLOSED", "OPEN")]


def test_failure_rate_over_the_window_opens() -> None:
    b, _, _ = make(consecutive_failures=100, failure_rate=0.5, min_requests=6, window_s=10)
    for ok in (True, False, True, False, True):  # 40 % of 5: under min_requests anyway
        b.record(ok)
    assert b.state is State.CLOSED
    b.record(False)  # 3 of 6 = 50 %
    assert b.state is State.OPEN
    b2, clock2, _ = make(consecutive_failures=100, failure_rate=0.5, min_requests=4, window_s=10)
    for ok in (False, False, True):
        b2.record(ok)
    clock2.t += 11  # the old failures leave the window
    for ok in (True, True, False, True):
        b2.record(ok)
    assert b2.state is State.CLOSED


def test_cooldown_then_half_open_probes_close_it() -> None:
    b, clock, seen = make(half_open_probes=1)
    for _ in range(3):
        b.record(False)
    clock.t += 4.9
    assert not b.allow() and 0 < b.retry_in_s() <= 0.1 + 1e-9
    clock.t += 0.2
    assert b.admits() and b.allow()
    assert b.state is State.HALF_OPEN
    assert not b.allow(), "one probe at a time"
    b.record(True)
    assert b.state is State.HALF_OPEN and b.allow()
    b.record(True)
    assert b.state is State.CLOSED
    assert seen == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]


def test_a_failed_probe_reopens_with_a_fresh_cooldown() -> None:
    b, clock, seen = make()
    for _ in range(3):
        b.record(False)
    clock.t += 6
    assert b.allow()
    b.record(False)
    assert b.state is State.OPEN and b.retry_in_s() == 5
    assert seen[-1] == ("HALF_OPEN", "OPEN")


def test_release_frees_a_probe_without_an_outcome() -> None:
    b, clock, _ = make()
    for _ in range(3):
        b.record(False)
    clock.t += 6
    assert b.allow() and not b.allow()
    b.release()  # e.g. the client cancelled, or the request was bad input
    assert b.state is State.HALF_OPEN and b.allow()


def test_late_outcomes_while_open_are_ignored_and_disabled_never_opens() -> None:
    b, _, _ = make()
    for _ in range(3):
        b.record(False)
    b.record(True)  # a request allowed before the breaker opened finished late
    assert b.state is State.OPEN
    off, _, _ = make(enabled=False)
    for _ in range(50):
        off.record(False)
    assert off.state is State.CLOSED and off.allow()


def test_reset_closes_at_once_from_open_or_half_open_and_forgets_failures() -> None:
    b, clock, seen = make()
    for _ in range(3):
        b.record(False)
    assert b.state is State.OPEN
    b.reset()
    assert b.state is State.CLOSED and b.allow()
    b.record(False)
    b.record(False)
    assert b.state is State.CLOSED, "the failures before the reset no longer count"
    b.record(False)
    clock.t += 5
    assert b.allow() and b.state is State.HALF_OPEN
    b.reset()
    b.reset()  # closed already: no transition
    assert seen == [("CLOSED", "OPEN"), ("OPEN", "CLOSED"), ("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"),
                    ("HALF_OPEN", "CLOSED")]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 6), st.booleans()), max_size=60))
def test_the_rate_trip_matches_a_recount_of_the_window(outcomes: list[tuple[float, bool]]) -> None:
    """The breaker opens on the outcome where a recount of its window (or the consecutive run) says so."""
    b, clock, _ = make(consecutive_failures=6, failure_rate=0.5, min_requests=4, window_s=10)
    window: list[tuple[float, bool]] = []
    run = 0
    for dt, ok in outcomes:
        clock.t += dt
        window = [(t, o) for t, o in (*window, (clock.t, ok)) if clock.t - t <= 10]
        run = 0 if ok else run + 1
        rate = len(window) >= 4 and sum(not o for _, o in window) / len(window) >= 0.5
        b.record(ok)
        assert (b.state is State.OPEN) == (run >= 6 or rate)
        if b.state is State.OPEN:
            return
