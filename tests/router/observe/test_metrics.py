"""The metrics the router computes itself: breaker states, replica queues and bulk windows, the
HTTP health endpoints (the sums over worker processes: tests/test_cli.py)."""

from __future__ import annotations

import asyncio

import httpx

from router.config import BreakerConfig
from router.dispatch.admission import PrioritySlots
from router.dispatch.breaker import CircuitBreaker
from router.observe.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_the_breaker_state_gauge_follows_every_transition() -> None:
    metrics, clock = Metrics(), Clock()
    cfg = BreakerConfig.model_validate({"consecutive_failures": 2, "cooldown_s": 5, "probe_successes": 1})
    hook = lambda n, old, new: metrics.record_breaker("replica", n, old.name, new.name)  # noqa: E731 (as build_pools)
    breaker = CircuitBreaker("http://a:8000", cfg, clock=clock, on_transition=hook)

    def state() -> tuple[float | None, float | None]:
        labels = {"scope": "replica", "name": "http://a:8000"}
        reg = metrics.registry
        opened = reg.get_sample_value("roadwork_breaker_transitions_total", {**labels, "to": "open"})
        return reg.get_sample_value("roadwork_breaker_state", labels), opened

    breaker.record(False)
    breaker.record(False)
    assert state() == (1, 1)  # OPEN
    clock.t += 5
    assert breaker.allow()
    assert state() == (2, 1)  # HALF_OPEN
    breaker.record(False)
    assert state() == (1, 2)  # a failed probe: OPEN again
    clock.t += 5
    assert breaker.allow()
    breaker.record(True)
    assert state() == (0, 2)  # CLOSED


class FakeReplica:
    def __init__(self, name: str, slots: PrioritySlots) -> None:
        self.name, self.slots = name, slots


def test_queue_depth_and_bulk_window_per_replica() -> None:
    async def run() -> None:
        metrics, clock = Metrics(), Clock()
        slots = PrioritySlots(capacity=2, batch_capacity=2, busy_capacity=1, clock=clock)
        replica = FakeReplica("http://a:8000", slots)
        reg = metrics.registry

        def sample(name: str, **labels: str) -> float | None:
            metrics.record_replicas([replica])
            return reg.get_sample_value(name, {"replica": replica.name, **labels})

        assert sample("roadwork_bulk_window") == 2  # no interactive traffic: the whole bulk share
        await slots.acquire(True)
        await slots.acquire(True)
        waiting = [asyncio.ensure_future(slots.acquire(i)) for i in (True, True, False)]
        await asyncio.sleep(0)
        assert sample("roadwork_queue_depth", priority="interactive") == 2
        assert sample("roadwork_queue_depth", priority="bulk") == 1
        assert sample("roadwork_bulk_window") == 1  # interactive requests present: busy_capacity
        for w in waiting:
            w.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        assert sample("roadwork_queue_depth", priority="interactive") == 0

    asyncio.run(run())


def test_healthz_and_readyz() -> None:
    metrics, ready = Metrics(), [False]
    port = metrics.serve("127.0.0.1", 0, ready=lambda: ready[0])
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        not_ready = httpx.get(f"{base}/readyz", timeout=5)
        assert (not_ready.status_code, not_ready.text) == (503, "not serving: 0 of 1 router processes serving\n")
        ready[0] = True
        metrics.serving.set(1)
        serving = httpx.get(f"{base}/readyz", timeout=5)
        assert (serving.status_code, serving.text) == (200, "ok: 1 of 1 router processes serving\n")
        assert "# HELP roadwork_in_flight " in httpx.get(f"{base}/metrics", timeout=5).text
    finally:
        metrics.close()
