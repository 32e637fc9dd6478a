"""Dispatcher policy units: retries, breakers and fallback around scripted fake engines.

The real-process versions (vLLM killed, hung, restarted) are in test_faults.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import pytest

from engines.base import Delta, Finished, GenerationEvent, GenerationRequest, Message, Usage
from engines.errors import EngineBadRequest, EngineUnavailable, EngineUnsupported
from router.config import BreakerConfig, PoolConfig, RetryConfig, RoutingConfig
from router.dispatch.admission import DrainRate, PrioritySlots
from router.dispatch.breaker import CircuitBreaker, State
from router.dispatch.dispatcher import Dispatcher, Served, first_token_limit
from router.dispatch.pools import Pool, Replica, recovered, watch_health
from router.errors import EngineRejected, InvalidRequest, Overloaded, Unavailable
from router.types import Dispatched, FallingBack, ProgressEvent, Queued, RequestKind, Retrying

REQ = GenerationRequest(messages=(Message("user", "hi"),), max_tokens=4, temperature=0.0)
BREAKER = BreakerConfig(consecutive_failures=2, cooldown_s=60, probe_successes=1)


class Scripted:
    """An engine that plays one behaviour per call: ok, refuse, bad, hang, die_mid."""

    kind = "fake"
    vision = False
    model = "m"
    context_tokens = 0

    def __init__(self, name: str, *script: str) -> None:
        self.name = name
        self.script = list(script)
        self.calls = 0

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if step == "refuse":
            raise EngineUnavailable(f"{self.name}: connection refused")
        if step == "bad":
            raise EngineBadRequest("prompt is longer than the context")
        if step == "unsupported":
            raise EngineUnsupported("the model does not take images")
        if step == "hang":
            await asyncio.sleep(3600)
        yield Delta(self.name)
        if step == "die_mid":
            raise EngineUnavailable(f"{self.name}: stream broken")
        yield Finished("stop", Usage(1, 1), "m")

    async def health(self) -> bool:
        return True

    async def warmup(self) -> None:
        return None

    async def close(self) -> None:
        return None


def pool(name: str, *engines: Scripted, **cfg: object) -> Pool:
    pc = PoolConfig.model_validate({"policy": "round_robin", **cfg})
    replicas = [Replica(e, PrioritySlots(pc.max_in_flight, 1), CircuitBreaker(e.name, BREAKER)) for e in engines]
    return Pool(name, pc, replicas, CircuitBreaker(name, BREAKER))


def dispatcher(*pools: Pool, attempts: int = 3) -> Dispatcher:
    names = [p.name for p in pools]
    routing = RoutingConfig(multi_turn=names, batch=names, single_shot=names)
    retry = RetryConfig(max_attempts=attempts, initial_backoff_s=0, jitter_s=0)
    return Dispatcher({p.name: p for p in pools}, routing, retry)


async def run(
    d: Dispatcher, deadline: float | None = None, progress: list[ProgressEvent] | None = None
) -> tuple[str, Served]:
    """The answer's text and its Served event; progress events go to `progress`, and come before any text."""
    text, served = "", None
    async for event in d.stream(RequestKind.SINGLE_SHOT, REQ, deadline=deadline):
        if isinstance(event, Served):
            served = event
        elif isinstance(event, Delta):
            text += event.text
        else:
            assert not text, f"progress after the first token: {event}"
            if progress is not None:
                progress.append(event)
    assert served is not None
    return text, served


async def test_progress_tells_each_try_retry_and_fallback_before_the_first_token() -> None:
    p = pool("p", Scripted("a", "refuse"))
    q = pool("q", Scripted("c", "ok"))
    progress: list[ProgressEvent] = []
    text, _ = await run(dispatcher(p, q, attempts=2), progress=progress)
    assert text == "c"
    assert progress == [
        Dispatched("p", "a", 1),
        Retrying("p", "a", "a: connection refused", 2),
        Dispatched("p", "a", 2),
        FallingBack("p", "q", "a: connection refused"),
        Dispatched("q", "c", 1),
    ]


async def test_progress_tells_the_queue_position_while_waiting_for_a_slot() -> None:
    p = pool("p", Scripted("a", "ok"), max_in_flight=1)
    slots = p.replicas[0].slots
    assert slots.try_acquire(True)  # another request holds the only slot
    stream = dispatcher(p).stream(RequestKind.SINGLE_SHOT, REQ)
    assert await anext(stream) == Queued("p", "a", 1)
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    assert not waiting.done() and slots.queued(True) == 1
    slots.release(True)
    assert await waiting == Dispatched("p", "a", 1)
    assert [type(e) async for e in stream] == [Delta, Served]
    assert slots.in_flight == 0


async def test_a_request_closed_while_dispatched_frees_its_slot() -> None:
    p = pool("p", Scripted("a", "hang"))
    stream = dispatcher(p).stream(RequestKind.SINGLE_SHOT, REQ)
    assert await anext(stream) == Dispatched("p", "a", 1)
    assert p.replicas[0].slots.in_flight == 1
    await stream.aclose()  # the client went away before the first token
    assert p.replicas[0].slots.in_flight == 0 and p.breaker.state is State.CLOSED


async def test_a_refused_try_is_retried_on_the_other_replica() -> None:
    a, b = Scripted("a", "refuse"), Scripted("b", "ok")
    p = pool("p", a, b)
    text, served = await run(dispatcher(p))
    assert text == "b" and served.route.replica == "b" and a.calls == 1
    assert p.replicas[0].breaker.state is State.CLOSED  # one failure of two needed
    await run(dispatcher(p))  # round robin comes back to a, which refuses again: opens
    assert p.replicas[0].breaker.state is State.OPEN
    calls = a.calls
    for _ in range(4):
        assert (await run(dispatcher(p)))[0] == "b"
    assert a.calls == calls, "an open replica gets no traffic"
    assert p.breaker.state is State.CLOSED and all(r.slots.in_flight == 0 for r in p.replicas)


async def test_client_errors_are_not_retried_and_never_open_a_breaker() -> None:
    a = Scripted("a", "bad")
    p = pool("p", a)
    d = dispatcher(p, pool("q", Scripted("c", "ok")))
    for _ in range(5):
        with pytest.raises(EngineRejected, match="context"):
            await run(d)
    assert a.calls == 5, "a bad request is neither retried nor sent to a fallback"
    assert p.replicas[0].breaker.state is State.CLOSED and p.breaker.state is State.CLOSED


async def test_no_retry_after_the_first_token_and_the_commit_names_the_pool() -> None:
    a = Scripted("a", "die_mid")
    p = pool("p", Scripted("z", "refuse"))
    q = pool("q", a, Scripted("b", "ok"))
    committed: list[str] = []
    with pytest.raises(Unavailable, match="stream broken"):
        async for _ in dispatcher(p, q, attempts=1).stream(RequestKind.SINGLE_SHOT, REQ, on_commit=committed.append):
            pass
    assert a.calls == 1 and committed == ["q"], "committed once, to the pool whose replica sent text"


async def test_a_failed_pool_falls_back_and_its_breaker_opens() -> None:
    p = pool("p", Scripted("a", "refuse"))
    q = pool("q", Scripted("c", "ok"))
    d = dispatcher(p, q, attempts=2)
    for _ in range(2):
        _, served = await run(d)
        assert served.route.pool == "q" and served.route.fallback_from == ("p",)
    assert p.breaker.state is State.OPEN
    with pytest.raises(Unavailable, match=r"p: circuit open.*q: no healthy replica"):
        q.replicas[0].healthy = False
        await run(d)


async def test_a_hung_replica_times_out_to_the_next_one() -> None:
    a, b = Scripted("a", "hang"), Scripted("b", "ok")
    p = pool("p", a, b, first_token_timeout_s=0.2)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    text, _ = await run(dispatcher(p))
    assert text == "b" and 0.2 <= loop.time() - t0 < 1.0


async def test_retries_stop_at_the_deadline() -> None:
    p = pool("p", Scripted("a", "hang"), first_token_timeout_s=0.3)
    d = Dispatcher({"p": p}, RoutingConfig(multi_turn=["p"], batch=["p"], single_shot=["p"]),
                   RetryConfig(max_attempts=10, initial_backoff_s=0.2, jitter_s=0))  # fmt: skip
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(Unavailable, match="no first token"):
        await run(d, deadline=asyncio.get_running_loop().time() + 0.6)
    assert loop.time() - t0 < 0.9, "no sleep past the deadline"


async def test_a_full_queue_is_overloaded_with_a_retry_hint() -> None:
    a = Scripted("a", "hang")
    p = pool("p", a, max_in_flight=1, max_queue=1)
    d = dispatcher(p)
    holder = asyncio.create_task(run(d))
    waiter = asyncio.create_task(run(d))
    await asyncio.sleep(0.05)
    with pytest.raises(Overloaded) as info:
        await run(d)
    assert info.value.retry_after_s and info.value.retry_after_s > 0
    for t in (holder, waiter):
        t.cancel()
    await asyncio.gather(holder, waiter, return_exceptions=True)
    r = p.replicas[0]
    assert (r.slots.in_flight, r.slots.queued(True)) == (0, 0), "cancelled requests give their slots back"
    assert p.breaker.state is State.CLOSED and r.breaker.state is State.CLOSED, "cancels are no engine failures"


class Seeing(Scripted):
    """A scripted vision engine with a known context; remembers the requests it got."""

    vision = True

    def __init__(self, name: str, *script: str, context: int = 0) -> None:
        super().__init__(name, *script)
        self.context_tokens = context
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        self.requests.append(request)
        async for event in super().generate(request):
            yield event


def _with_image(width: int, height: int) -> GenerationRequest:
    import io

    from PIL import Image

    from engines.base import ImagePart

    out = io.BytesIO()
    Image.new("RGB", (width, height)).save(out, "JPEG")
    image = ImagePart(out.getvalue(), "image/jpeg", width, height, f"sha-{width}")
    return GenerationRequest((Message("user", "cones?", image),), max_tokens=4, temperature=0.0)


async def _served(d: Dispatcher, request: GenerationRequest) -> Served:
    async for event in d.stream(RequestKind.SINGLE_SHOT, request):
        if isinstance(event, Served):
            return event
    raise AssertionError("no Served event")


async def test_a_model_that_takes_no_images_falls_back_to_the_next_pool() -> None:
    blind, seeing = Seeing("blind", "unsupported"), Seeing("seeing", "ok")
    first, second = pool("first", blind), pool("second", seeing)
    served = await _served(dispatcher(first, second), _with_image(640, 480))
    assert served.route.pool == "second" and served.route.fallback_from == ("first",)
    assert blind.calls == 1, "not retried: no replica of that model can"
    assert first.breaker.state is State.CLOSED and first.replicas[0].breaker.state is State.CLOSED
    assert served.image is not None and served.image.tokens == 391  # 644x476 / 28^2


async def test_an_image_over_one_pools_context_goes_to_a_pool_it_fits_else_invalid_argument() -> None:
    small, large = Seeing("small", "ok", context=200), Seeing("large", "ok", context=4096)
    first, second = pool("first", small), pool("second", large)
    served = await _served(dispatcher(first, second), _with_image(640, 480))  # 391 + 4 tokens
    assert served.route.pool == "second" and small.calls == 0
    assert first.breaker.state is State.CLOSED and first.replicas[0].slots.in_flight == 0
    with pytest.raises(InvalidRequest, match=r"391 tokens at 644x476 .* 200-token context of pool 'only'"):
        await _served(dispatcher(pool("only", Seeing("tiny", "ok", context=200))), _with_image(640, 480))


async def test_a_text_only_pool_gets_the_request_without_its_image() -> None:
    text_only = Scripted("text", "ok")  # vision = False
    served = await _served(dispatcher(pool("p", text_only)), _with_image(640, 480))
    assert served.image is None and text_only.calls == 1


async def test_replicas_down_at_this_instant_do_not_open_the_pool_breaker() -> None:
    p, q = pool("p", Scripted("a", "ok")), pool("q", Scripted("c", "ok"))
    p.replicas[0].healthy = False  # the health check says down; its breaker never saw a failure
    d = dispatcher(p, q)
    for _ in range(5):
        assert (await run(d))[1].route.pool == "q"
    assert p.breaker.state is State.CLOSED, "'none healthy now' is not 'every replica failed'"
    p.replicas[0].healthy = True
    assert (await run(d))[1].route.pool == "p", "back at once, no cooldown to sit out"


async def test_one_served_answer_closes_a_half_open_pool_breaker() -> None:
    slow_probes = BreakerConfig(consecutive_failures=1, cooldown_s=0.01, probe_successes=5)
    p = pool("p", Scripted("a", "ok"))
    p.breaker = CircuitBreaker("p", slow_probes)
    p.breaker.record(False)
    assert p.breaker.state is State.OPEN
    await asyncio.sleep(0.02)
    _, served = await run(dispatcher(p))  # the probe
    assert served.route.pool == "p" and p.breaker.state is State.CLOSED, "a served probe puts the pool back"


class Health(Scripted):
    """A scripted engine whose health check plays `states` (then stays at the last)."""

    def __init__(self, name: str, *states: bool) -> None:
        super().__init__(name, "ok")
        self.states = list(states)

    async def health(self) -> bool:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


async def test_a_replica_passing_its_health_check_again_puts_itself_and_its_pool_back_at_once() -> None:
    engine = Health("a", False, False, True)
    p = pool("p", engine)
    r = p.replicas[0]
    for _ in range(2):  # requests failed on it: its breaker is open, and with it the pool's (60 s cooldown)
        r.breaker.record(False)
        p.breaker.record(False)
    assert r.breaker.state is State.OPEN and p.breaker.state is State.OPEN
    watch = asyncio.create_task(watch_health(r, lambda rep: recovered({"p": p}, rep), interval_s=60, recovery_s=0.01))
    try:
        for _ in range(500):
            await asyncio.sleep(0.01)
            if r.breaker.state is State.CLOSED:
                break
        assert r.healthy and r.breaker.state is State.CLOSED and p.breaker.state is State.CLOSED
        assert (await run(dispatcher(p)))[0] == "a"
    finally:
        watch.cancel()


def test_the_first_token_wait_is_capped_at_half_the_time_left() -> None:
    assert first_token_limit(30.0, None, 100.0) == 30.0
    assert first_token_limit(30.0, 120.0, 100.0) == 10.0
    assert first_token_limit(4.0, 120.0, 100.0) == 4.0, "the configured timeout when it is the shorter"
    assert first_token_limit(30.0, 99.0, 100.0) == 0.0, "a passed deadline waits for nothing"


async def test_a_hang_fails_over_inside_the_deadline_even_with_a_long_first_token_timeout() -> None:
    a, b = Scripted("a", "hang"), Scripted("b", "ok")
    p = pool("p", a, b, first_token_timeout_s=30)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with asyncio.timeout(10):  # uncapped, the hang would hold the request for 30 s
        text, served = await run(dispatcher(p), deadline=time.monotonic() + 2.0)
    waited = loop.time() - t0
    assert text == "b" and served.route.replica == "b" and a.calls == 1
    assert 0.9 <= waited < 2.0, f"failed over after half the 2 s left, not at the deadline: {waited:.2f} s"


async def test_a_full_queue_hints_a_retry_at_its_measured_drain_rate() -> None:
    p = pool("p", Scripted("a", "ok"), max_in_flight=1, max_queue=0)
    slots = p.replicas[0].slots
    assert slots.try_acquire(True)  # another request holds the only slot, and none may wait
    with pytest.raises(Overloaded) as fresh:
        await run(dispatcher(p))
    assert fresh.value.retry_after_s == DrainRate.DEFAULT_S  # no release seen yet
    slots.drain.interval_s = 0.25  # as measured: a slot frees every 0.25 s
    with pytest.raises(Overloaded) as measured:
        await run(dispatcher(p))
    assert measured.value.retry_after_s == 0.25 and measured.value.metadata["pools"] == "p"
