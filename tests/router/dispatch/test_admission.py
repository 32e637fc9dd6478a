"""PrioritySlots: interactive requests first, bulk items bounded and yielding."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from router._proto.roadwork.v1 import router_pb2 as pb
from router.dispatch.admission import DrainRate, PrioritySlots
from tests.conftest import ErrorDetails, RunningRouter, make_config


async def test_batch_share_is_bounded() -> None:
    slots = PrioritySlots(capacity=4, batch_capacity=2)
    await slots.acquire(False)
    await slots.acquire(False)
    third = asyncio.create_task(slots.acquire(False))
    await asyncio.sleep(0.01)
    assert not third.done() and slots.batch_in_flight == 2
    await slots.acquire(True)  # interactive still gets in
    slots.release(False)
    await asyncio.wait_for(third, 1)
    assert slots.batch_in_flight == 2 and slots.in_flight == 3


async def test_waiting_interactive_request_goes_before_waiting_batch() -> None:
    slots = PrioritySlots(capacity=1, batch_capacity=1)
    await slots.acquire(False)
    order: list[str] = []

    async def take(name: str, interactive: bool) -> None:
        await slots.acquire(interactive)
        order.append(name)

    batch = asyncio.create_task(take("batch", False))
    await asyncio.sleep(0.01)
    inter = asyncio.create_task(take("interactive", True))
    await asyncio.sleep(0.01)
    slots.release(False)
    await asyncio.wait_for(inter, 1)
    assert order == ["interactive"] and not batch.done()
    slots.release(True)
    await asyncio.wait_for(batch, 1)
    assert order == ["interactive", "batch"]


async def test_cancelled_waiter_does_not_leak_priority() -> None:
    slots = PrioritySlots(capacity=1, batch_capacity=1)
    await slots.acquire(True)
    waiter = asyncio.create_task(slots.acquire(True))
    await asyncio.sleep(0.01)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    slots.release(True)
    await asyncio.wait_for(slots.acquire(False), 1)  # no phantom interactive waiter blocks batch


async def test_a_waiter_cancelled_as_slots_are_granted_leaves_no_error() -> None:
    """Cancel a queued request in the same loop tick as a release: `_grant` drops its cancelled
    future first, and its own cleanup must not fail on the missing entry (it killed bulk workers)."""
    slots = PrioritySlots(capacity=1, batch_capacity=1)
    await slots.acquire(True)
    first = asyncio.create_task(slots.acquire(True))
    second = asyncio.create_task(slots.acquire(True))
    await asyncio.sleep(0)
    first.cancel()
    slots.release(True)
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert (slots.in_flight, slots.queued(True)) == (1, 0)


def test_a_full_queue_answers_resource_exhausted_with_a_retry_hint(
    tmp_path_factory: pytest.TempPathFactory, sample_jpeg: bytes
) -> None:
    """The embedded engine runs one generation at a time; with no queue allowed, a second Ask while
    the first generates is turned away at once, with a RetryInfo (and `retry-after-ms`), and the server stays fine."""
    env = {f"ROADWORK__POOLS__{p}__MAX_QUEUE": "0" for p in ("VLLM", "SGLANG", "LMDEPLOY")}
    r = RunningRouter(make_config(tmp_path_factory.mktemp("queue"), **env)).wait_ready()
    try:
        r.stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=60)
        long = r.stub.Ask(pb.AskRequest(image=sample_jpeg, question="Describe it all.",
                                        generation=pb.GenerationOptions(max_tokens=256)), timeout=120)  # fmt: skip
        next(long)  # the detection event: the generation is about to hold the only slot
        next(long)  # a delta: it does
        with pytest.raises(grpc.RpcError) as exc:
            list(r.stub.Ask(pb.AskRequest(image=sample_jpeg, question="Me too?"), timeout=30))
        err = exc.value
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
        assert "queue limit" in err.details()  # type: ignore[attr-defined]
        details = ErrorDetails(err)  # google.rpc.RetryInfo, and the old retry-after-ms (kept for release 0.2)
        assert details.reason == "QUEUE_FULL" and details.info.metadata["pools"] == "vllm,sglang,lmdeploy"
        assert details.retry is not None and details.retry.retry_delay.ToMilliseconds() > 0
        hint = dict(err.trailing_metadata() or ())  # type: ignore[attr-defined]
        assert int(hint["retry-after-ms"]) == details.retry.retry_delay.ToMilliseconds()
        long.cancel()
        time.sleep(0.5)
        events = list(r.stub.Ask(pb.AskRequest(image=sample_jpeg, question="Now?",
                                               generation=pb.GenerationOptions(max_tokens=2)), timeout=60))  # fmt: skip
        assert events[-1].done.usage.completion_tokens > 0
    finally:
        r.stop()


def test_max_concurrent_streams_bounds_calls_per_connection(
    tmp_path_factory: pytest.TempPathFactory, sample_jpeg: bytes
) -> None:
    """server.max_concurrent_streams = 1: while one call streams, a second call on the same
    connection is held by HTTP/2 (it does not reach the router) until the first ends."""
    r = RunningRouter(make_config(tmp_path_factory.mktemp("streams"), ROADWORK__SERVER__MAX_CONCURRENT_STREAMS="1"))
    r.wait_ready()
    try:
        r.stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=60)
        long = r.stub.Ask(pb.AskRequest(image=sample_jpeg, question="Describe it all.",
                                        generation=pb.GenerationOptions(max_tokens=256)), timeout=120)  # fmt: skip
        next(long)
        with pytest.raises(grpc.RpcError) as exc:
            r.stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=1.0)
        assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
        long.cancel()
        assert r.stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=30).detection.image_sha256
    finally:
        r.stop()


async def test_the_bulk_window_shrinks_while_interactive_traffic_is_present() -> None:
    now = [0.0]
    slots = PrioritySlots(capacity=8, batch_capacity=6, busy_capacity=2, busy_hold_s=1.0, clock=lambda: now[0])
    for _ in range(3):
        await slots.acquire(False)
    assert slots.batch_window() == 6
    await slots.acquire(True)  # interactive traffic: bulk is held to 2 (the 3 running keep running)
    assert slots.batch_window() == 2
    waiter = asyncio.create_task(slots.acquire(False))
    await asyncio.sleep(0)
    assert not waiter.done()
    slots.release(True)
    now[0] = 0.5
    slots.release(False)  # 2 bulk in flight: still inside the hold, no room
    await asyncio.sleep(0)
    assert not waiter.done() and slots.batch_window() == 2
    now[0] = 1.6
    slots.release(False)  # the hold is over: the window reopens, the waiter runs
    await waiter
    assert slots.batch_window() == 6 and slots.batch_in_flight == 2


def test_the_drain_rate_is_the_mean_time_between_releases_while_busy() -> None:
    d = DrainRate(alpha=0.5)
    assert d.wait_s(3) == DrainRate.DEFAULT_S  # nothing measured yet
    for t in (10.0, 10.4, 10.8):  # a busy replica frees a slot every 0.4 s
        d.released(t, busy=True)
    assert d.interval_s == pytest.approx(0.4)
    assert d.wait_s(1) == pytest.approx(0.4) and d.wait_s(3) == pytest.approx(1.2)
    d.released(11.0, busy=False)  # the last request left: the replica goes idle
    d.released(500.0, busy=True)  # the idle gap is not counted as a slow release
    assert d.interval_s == pytest.approx(0.5 * 0.2 + 0.5 * 0.4)
    d.released(500.1, busy=True)  # it speeds up: the mean follows (EWMA, alpha 0.5)
    assert d.interval_s == pytest.approx(0.5 * 0.1 + 0.5 * 0.3)
    assert d.wait_s(10_000) == DrainRate.MAX_S and DrainRate(0.5).wait_s(1) == DrainRate.DEFAULT_S


def test_slots_feed_the_drain_rate_and_hint_by_queue_position() -> None:
    now = [0.0]
    slots = PrioritySlots(2, 1, clock=lambda: now[0])
    assert slots.try_acquire(True) and slots.try_acquire(True)
    for t in (1.0, 1.5, 2.0):
        now[0] = t
        slots.release(True)
        assert slots.try_acquire(True)  # the slot is taken again at once: still busy
    assert slots.drain.interval_s == pytest.approx(0.5)
    assert slots.retry_after_s() == pytest.approx(0.5)  # nobody queued: the next release
