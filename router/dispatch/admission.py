"""Per-replica slots with two priorities: interactive requests first, bulk items in a bounded share
that shrinks while interactive traffic is present."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable

from router.dispatch.bulk_window import AdaptiveWindow


class DrainRate:
    """How fast a replica's slots free up: an exponentially weighted mean of the time between slot
    releases, measured only while the replica stays busy (an idle gap is no evidence of speed). The
    retry hint of a full queue comes from it (google.rpc.RetryInfo on QUEUE_FULL)."""

    DEFAULT_S = 1.0  # the hint before any release was seen (a fresh server)
    MIN_S, MAX_S = 0.05, 60.0  # bounds of the hint

    def __init__(self, alpha: float = 0.2) -> None:
        self.alpha = alpha
        self.interval_s: float | None = None  # the mean time between releases; None before two
        self._last: float | None = None  # the last release that left the replica busy

    def released(self, now: float, busy: bool) -> None:
        """A slot was freed at `now`; `busy`: other requests still hold slots."""
        if self._last is not None:
            gap = now - self._last
            self.interval_s = gap if self.interval_s is None else self.alpha * gap + (1 - self.alpha) * self.interval_s
        self._last = now if busy else None

    def wait_s(self, position: int) -> float:
        """The expected wait of the request `position` places from a slot (1 = the next freed one)."""
        if self.interval_s is None:
            return self.DEFAULT_S
        return min(self.MAX_S, max(self.MIN_S, position * self.interval_s))


class PrioritySlots:
    """At most `capacity` requests in flight; bulk items use at most `batch_capacity` of them and
    never take a slot while an interactive request is waiting for one. While interactive requests
    are in flight (or were within the last `busy_hold_s`), bulk items are held to `busy_capacity`:
    fewer sequences in the engine's running batch make each decode step, and so each interactive
    answer, faster. Items already running are not interrupted; the window reopens as they finish.

    `release` is synchronous on purpose: it runs in `finally` blocks of cancelled requests, where
    a second cancellation could interrupt an `await` and leak the slot."""

    def __init__(
        self,
        capacity: int,
        batch_capacity: int,
        busy_capacity: int | None = None,
        busy_hold_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        adaptive: AdaptiveWindow | None = None,
    ) -> None:
        self.capacity = capacity
        self.batch_capacity = max(1, min(batch_capacity, capacity))
        self.busy_capacity = self.batch_capacity if busy_capacity is None else max(1, min(busy_capacity, capacity))
        self.busy_hold_s = busy_hold_s
        self.adaptive = adaptive  # when set, it sizes the window while interactive requests are present
        self._clock = clock
        self.in_flight = 0
        self.batch_in_flight = 0
        self._last_interactive = float("-inf")
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}
        self.drain = DrainRate()

    def batch_window(self) -> int:
        """Bulk items allowed in flight now: `busy_capacity` (or the adaptive window's size) while
        interactive traffic is present."""
        busy = self.busy_capacity if self.adaptive is None else min(self.adaptive.size, self.batch_capacity)
        if busy >= self.batch_capacity:
            return self.batch_capacity
        interactive = self.in_flight - self.batch_in_flight
        if interactive > 0 or self._waiting[True] or self._clock() - self._last_interactive < self.busy_hold_s:
            return busy
        return self.batch_capacity

    def observe(self, per_token_s: float) -> None:
        """A finished interactive answer's time per token, whole (feeds the adaptive window)."""
        if self.adaptive is not None:
            self.adaptive.record(per_token_s, self.batch_in_flight)
            self._grant()  # a grown window may admit waiting bulk items

    def _free(self, interactive: bool) -> bool:
        if self.in_flight >= self.capacity:
            return False
        if interactive:
            return True
        return self.batch_in_flight < self.batch_window() and not self._waiting[True]

    def _take(self, interactive: bool) -> None:
        self.in_flight += 1
        if interactive:
            self._last_interactive = self._clock()
        else:
            self.batch_in_flight += 1

    def queued(self, interactive: bool) -> int:
        """Requests of that priority waiting for a slot."""
        return len(self._waiting[interactive])

    def try_acquire(self, interactive: bool) -> bool:
        """Take a slot at once if one is free for this priority (nobody ahead of it is waiting)."""
        if not self._waiting[interactive] and self._free(interactive):
            self._take(interactive)
            return True
        return False

    async def acquire(self, interactive: bool) -> None:
        if self.try_acquire(interactive):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[interactive].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # granted just as we were cancelled
                self.release(interactive)
            else:
                with contextlib.suppress(ValueError):  # `_grant` may have dropped it already
                    self._waiting[interactive].remove(waiter)
                self._grant()  # a batch waiter may have been held back only by this one
            raise

    def release(self, interactive: bool) -> None:
        self.in_flight -= 1
        now = self._clock()
        if interactive:
            self._last_interactive = now
        else:
            self.batch_in_flight -= 1
        self.drain.released(now, busy=self.in_flight > 0)
        self._grant()

    def retry_after_s(self) -> float:
        """When an interactive request turned away now might find room: the queue ahead of it drained
        at the measured release rate (DrainRate)."""
        return self.drain.wait_s(self.queued(True) + 1)

    def _grant(self) -> None:
        """Hand free slots to waiters: interactive ones first, then bulk within its share."""
        for interactive in (True, False):
            queue = self._waiting[interactive]
            while queue and self._free(interactive):
                waiter = queue.popleft()
                if not waiter.done():
                    self._take(interactive)
                    waiter.set_result(None)
