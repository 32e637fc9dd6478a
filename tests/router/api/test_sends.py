"""Pipelined sends (router/api/sends.py): in order, never more than `depth` in flight, a failure ends the call."""

from __future__ import annotations

import asyncio

import pytest

from router.api.sends import Sends


class Wire:
    """Sends that complete when the test says so, one at a time like grpc's."""

    def __init__(self) -> None:
        self.written: list[int] = []
        self.busy = False
        self.gate = asyncio.Event()

    def send(self, n: int, fail: bool = False) -> object:
        async def go() -> None:
            assert not self.busy, "two sends at once"
            self.busy = True
            try:
                await self.gate.wait()
                if fail:
                    raise RuntimeError(f"send {n} failed")
                self.written.append(n)
            finally:
                self.busy = False

        return go


async def _done() -> None:
    return None


async def test_sends_go_out_in_order_one_at_a_time_and_the_producer_runs_ahead() -> None:
    wire = Wire()
    sends = Sends(asyncio.ensure_future(_done()), depth=4)
    for n in range(3):
        await asyncio.wait_for(sends.add(wire.send(n)), 1)  # the producer is not held up
    assert wire.written == []
    wire.gate.set()
    await sends.drain()
    assert wire.written == [0, 1, 2]


async def test_the_producer_waits_once_depth_sends_are_in_flight() -> None:
    wire = Wire()
    sends = Sends(asyncio.ensure_future(_done()), depth=2)
    await sends.add(wire.send(0))
    await sends.add(wire.send(1))
    blocked = asyncio.ensure_future(sends.add(wire.send(2)))
    await asyncio.sleep(0.05)
    assert not blocked.done(), "a client that stops reading stops the producer"
    wire.gate.set()
    await asyncio.wait_for(blocked, 1)
    await sends.drain()
    assert wire.written == [0, 1, 2]


async def test_a_failed_send_fails_the_next_add_or_the_drain_and_cancel_stops_the_rest() -> None:
    wire = Wire()
    sends = Sends(asyncio.ensure_future(_done()), depth=8)
    await sends.add(wire.send(0, fail=True))
    await sends.add(wire.send(1))
    wire.gate.set()
    with pytest.raises(RuntimeError, match="send 0 failed"):
        await sends.drain()
    assert wire.written == [], "nothing after a failed send goes out"
    wire2 = Wire()
    later = Sends(asyncio.ensure_future(_done()), depth=8)
    for n in range(3):
        await later.add(wire2.send(n))
    later.cancel()
    await asyncio.sleep(0.01)
    wire2.gate.set()
    await asyncio.sleep(0.01)
    assert wire2.written == [] and not wire2.busy
