"""The adaptive bulk window (AIMD on interactive answers' time per token) and its use by the slots."""

from __future__ import annotations

import asyncio

from router.dispatch.admission import PrioritySlots
from router.dispatch.bulk_window import AdaptiveWindow


def test_shrinks_when_interactive_answers_slow_down_and_grows_back() -> None:
    now = [0.0]
    w = AdaptiveWindow(floor=2, ceiling=32, target=1.3, decrease=0.5, cooldown_s=1.0, smoothing=1.0,
                       clock=lambda: now[0])  # fmt: skip
    w.record(0.010, bulk_in_flight=0)  # the baseline: no bulk running
    assert w.baseline == 0.010 and w.size == 32
    w.record(0.020, bulk_in_flight=32)  # 2x slower: halve
    assert w.size == 16
    w.record(0.020, bulk_in_flight=16)  # within the cooldown: one burst is one step
    assert w.size == 16
    now[0] = 1.5
    for _ in range(5):
        w.record(0.020, bulk_in_flight=16)
    assert w.size == 8  # one more halving, then the cooldown again
    for _ in range(3):
        w.record(0.012, bulk_in_flight=8)  # within 1.3x: +1 each
    assert w.size == 11
    for _ in range(100):
        w.record(0.011, bulk_in_flight=11)
    assert w.size == 32  # back to the ceiling, never above
    now[0] = 10.0
    for _ in range(20):
        now[0] += 2
        w.record(0.1, bulk_in_flight=32)
    assert w.size == 2  # never below the floor


def test_without_an_idle_sample_the_lowest_one_is_the_baseline() -> None:
    w = AdaptiveWindow(floor=1, ceiling=10, cooldown_s=0.0, smoothing=1.0, clock=lambda: 0.0)
    w.record(0.02, bulk_in_flight=10)
    assert w.baseline is None and w.size == 10  # its own baseline: not slower than itself
    w.record(0.05, bulk_in_flight=10)
    assert w.size == 7
    w.record(0.001, bulk_in_flight=0)
    w.record(0.0011, bulk_in_flight=0)
    assert w.baseline is not None and abs(w.baseline - 0.0011) < 1e-9  # an idle sample, then smoothed (1.0: the last)


def test_one_slow_answer_among_normal_ones_is_noise_a_run_of_them_a_trend() -> None:
    now = [0.0]
    w = AdaptiveWindow(floor=1, ceiling=32, target=1.3, decrease=0.5, cooldown_s=0.0, clock=lambda: now[0])
    w.record(0.010, bulk_in_flight=0)
    for _ in range(10):
        w.record(0.011, bulk_in_flight=32)
    w.record(0.018, bulk_in_flight=32)  # 1.8x once: the smoothed slowdown goes 1.1 -> 1.28
    w.record(0.011, bulk_in_flight=32)
    assert w.size == 32 and w.slowdown is not None and w.slowdown < 1.3
    for _ in range(4):
        w.record(0.020, bulk_in_flight=32)  # slow again and again: the smoothed slowdown passes 1.3
    assert w.size < 32 and w.slowdown > 1.3


async def test_the_slots_use_the_adaptive_size_while_interactive_requests_are_present() -> None:
    now = [0.0]
    window = AdaptiveWindow(floor=1, ceiling=6, target=1.3, decrease=0.5, cooldown_s=0.0, smoothing=1.0,
                            clock=lambda: now[0])  # fmt: skip
    slots = PrioritySlots(capacity=8, batch_capacity=6, busy_hold_s=1.0, clock=lambda: now[0], adaptive=window)
    slots.observe(0.01)  # an interactive answer with no bulk running: the baseline
    for _ in range(4):
        await slots.acquire(False)
    await slots.acquire(True)
    assert slots.batch_window() == 6  # nothing slowed down yet
    slots.observe(0.03)  # 3x slower with 4 bulk items: the window halves
    assert slots.batch_window() == 3
    waiter = asyncio.create_task(slots.acquire(False))
    await asyncio.sleep(0)
    assert not waiter.done()
    slots.release(True)
    now[0] = 2.0  # no interactive traffic for longer than the hold: the whole window again
    slots.release(False)
    await waiter
    assert slots.batch_window() == 6
