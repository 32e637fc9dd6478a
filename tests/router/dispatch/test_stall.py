"""Hung-replica detection (router/dispatch/stall.py): the rule on a fake clock, aborted reads, and the dispatcher
failing over from a scripted hung engine. The real-process version (vLLM SIGSTOPped under load) is in
test_chaos.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import pytest

from engines.base import Delta, Finished, GenerationEvent, GenerationRequest, Message, Usage
from engines.errors import EngineTimeout
from engines.registry import SERVER_KINDS
from router.config import BreakerConfig, PoolConfig, RetryConfig, RoutingConfig
from router.dispatch.admission import PrioritySlots
from router.dispatch.breaker import CircuitBreaker, State
from router.dispatch.dispatcher import Dispatcher, Served
from router.dispatch.pools import Pool, Replica, hung, recovered, watch_health, watch_stalls
from router.dispatch.stall import Progress, Watched, stalled
from router.types import RequestKind

REQ = GenerationRequest(messages=(Message("user", "hi"),), max_tokens=8, temperature=0.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _forever() -> AsyncGenerator[GenerationEvent, None]:
    await asyncio.sleep(3600)
    yield Delta("never")


async def _one(text: str) -> AsyncGenerator[GenerationEvent, None]:
    yield Delta(text)


async def test_a_replica_is_stalled_only_while_another_progresses() -> None:
    clock = Clock()
    a, b = Progress("a", clock), Progress("b", clock)
    wa, wb = Watched(a, 2.0), Watched(b, 2.0)
    waiting = asyncio.create_task(a.read(_forever()))  # a read waits on a from t = 0
    await asyncio.sleep(0)
    clock.now = 3.0
    assert a.idle_s(clock.now) == 3.0 and b.idle_s(clock.now) == 0.0
    assert stalled([wa, wb], clock.now) == [], "nobody progressed: a slow moment for all is no stall"
    clock.now = 2.5
    await b.read(_one("x"))  # b's stream yielded half a second before t = 3
    clock.now = 3.0
    assert stalled([wa, wb], clock.now) == [wa]
    assert stalled([Watched(a, 4.0), wb], clock.now) == [], "within its own stall_s"
    assert stalled([Watched(a, 0.0), wb], clock.now) == [], "stall_s = 0 is off"
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert a.waiting == 0 and stalled([wa, wb], clock.now) == [], "no read waiting: a slow caller is no stall"
    waiting = asyncio.create_task(a.read(_forever()))  # a new read starts its own clock
    await asyncio.sleep(0)
    assert stalled([wa, wb], clock.now) == []
    clock.now = 5.1
    b.last_event = 5.0
    assert stalled([wa, wb], clock.now) == [wa]
    a.stalled_for = 2.1
    assert stalled([wa, wb], clock.now) == [], "already marked"
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)


async def test_a_stall_fails_the_reads_in_flight_at_once_and_later_ones_until_resumed() -> None:
    p = Progress("http://a")
    reading = asyncio.create_task(p.read(_forever()))
    await asyncio.sleep(0.01)
    started = time.monotonic()
    assert p.stall(6.0) == 1
    with pytest.raises(EngineTimeout, match=r"http://a: no progress on its streams for 6.0 s .*stall_s"):
        await reading
    assert time.monotonic() - started < 0.1
    with pytest.raises(EngineTimeout):
        await p.read(_one("x"))
    p.resume()
    assert await p.read(_one("x")) == Delta("x")


async def test_a_callers_own_timeout_stays_a_timeout() -> None:
    p = Progress("a")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await p.read(_forever())
    assert not p.stalled_for


async def test_a_client_cancel_stays_a_cancel_even_in_the_same_tick_as_a_stall() -> None:
    p = Progress("a")
    alone = asyncio.create_task(p.read(_forever()))
    both = asyncio.create_task(p.read(_forever()))
    await asyncio.sleep(0.01)
    alone.cancel()
    both.cancel()
    p.stall(1.0)
    for task in (alone, both):
        with pytest.raises(asyncio.CancelledError):
            await task


class Engine:
    """A scripted engine: `hang` yields nothing, `hang_mid` one delta then nothing, `steady` deltas every 20 ms."""

    kind = "fake"
    vision = False
    context_tokens = 0

    def __init__(self, name: str, mode: str) -> None:
        self.name, self.mode = name, mode
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        self.requests.append(request)
        if self.mode == "hang":
            await asyncio.sleep(3600)
        for i in range(request.max_tokens):
            yield Delta(f"{self.name}{i} ")
            await asyncio.sleep(3600 if self.mode == "hang_mid" else 0.02)
        yield Finished("length", Usage(1, request.max_tokens), "m")

    async def health(self) -> bool:
        return True

    async def warmup(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _pool(*engines: Engine, stall_s: float) -> Pool:
    pc = PoolConfig.model_validate({"policy": "round_robin", "stall_s": stall_s})
    bc = BreakerConfig(consecutive_failures=3, cooldown_s=60)
    replicas = [
        Replica(e, PrioritySlots(64, 1), CircuitBreaker(e.name, bc), server=SERVER_KINDS["vllm"], url=e.name)
        for e in engines
    ]
    return Pool("p", pc, replicas, CircuitBreaker("p", bc))


async def _ask(d: Dispatcher, started: float) -> tuple[float, str, Served]:
    """Time to the first delta, the text, and the end."""
    first, text, served = 0.0, "", None
    async for event in d.stream(RequestKind.SINGLE_SHOT, REQ, deadline=time.monotonic() + 20):
        if isinstance(event, Served):
            served = event
        elif isinstance(event, Delta):
            first = first or time.monotonic() - started
            text += event.text
    assert served is not None
    return first, text, served


@pytest.mark.parametrize("mode", ["hang", "hang_mid"])
async def test_requests_on_a_hung_replica_fail_over_within_stall_s(mode: str) -> None:
    stall_s = 0.4
    bad, good = Engine("http://bad", mode), Engine("http://good", "steady")
    p = _pool(bad, good, stall_s=stall_s)
    routing = RoutingConfig(multi_turn=["p"], batch=["p"], single_shot=["p"])
    d = Dispatcher({"p": p}, routing, RetryConfig(max_attempts=3, initial_backoff_s=0, jitter_s=0))
    found: list[float] = []

    def on_stall(r: Replica, idle_s: float) -> None:
        found.append(idle_s)
        hung(r, idle_s)

    watch = asyncio.create_task(watch_stalls({"p": p}, on_stall))
    try:
        started = time.monotonic()
        results = await asyncio.gather(*(_ask(d, started) for _ in range(6)))
        elapsed = time.monotonic() - started
    finally:
        watch.cancel()
    assert len(found) == 1 and stall_s < found[0] < stall_s + 0.3, found
    bad_replica = p.replicas[0]
    assert not bad_replica.healthy and bad_replica.progress.stalled_for
    assert len(bad.requests) == 3, "round robin sent half the requests to the hung replica"
    for first, text, served in results:
        assert served.route.replica == "http://good"
        assert first < stall_s + 0.5, f"waited {first:.2f} s for a first token (stall_s {stall_s})"
        if mode == "hang_mid" and served.route.migrations:  # the answer kept bad's delta and went on
            assert text.startswith("http://bad0 ") and served.finished.usage.completion_tokens == REQ.max_tokens
    moved = [s for _, _, s in results if s.route.migrations]
    assert len(moved) == (3 if mode == "hang_mid" else 0)
    assert elapsed < stall_s + 0.5 + REQ.max_tokens * 0.02 + 0.5
    assert bad_replica.breaker.state is State.OPEN, "the replica's breaker counted each failed stream"
    assert p.breaker.state is State.CLOSED, "one replica hung is no failure of its pool"
    # Its /health still answers: the health watch brings it back only once a generation finishes.
    health = asyncio.create_task(
        watch_health(bad_replica, lambda r: recovered({"p": p}, r), recovery_s=0.02, probe_s=0.2)
    )
    try:
        await asyncio.sleep(0.8)
        assert not bad_replica.healthy and bad_replica.progress.stalled_for, "back while it still hangs"
        assert len(bad.requests) > 3, "the health watch probed it with a generation"
        bad.mode = "steady"
        for _ in range(100):
            await asyncio.sleep(0.02)
            if bad_replica.healthy:
                break
        assert bad_replica.healthy and not bad_replica.progress.stalled_for
        assert bad_replica.breaker.state is State.CLOSED
    finally:
        health.cancel()
    served_by = {(await _ask(d, time.monotonic()))[2].route.replica for _ in range(2)}
    assert served_by == {"http://bad", "http://good"}, "back in the rotation"
