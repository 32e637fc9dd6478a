"""PrioritySlots: interactive requests first, bulk items bounded and yielding."""

from __future__ import annotations

import asyncio

import pytest

from router.admission import PrioritySlots


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
