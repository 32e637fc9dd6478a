"""Per-replica slots with two priorities: interactive requests first, bulk items in a bounded share."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class PrioritySlots:
    """At most `capacity` requests in flight; bulk items use at most `batch_capacity` of them and
    never take a slot while an interactive request is waiting for one.

    `release` is synchronous on purpose: it runs in `finally` blocks of cancelled requests, where
    a second cancellation could interrupt an `await` and leak the slot."""

    def __init__(self, capacity: int, batch_capacity: int) -> None:
        self.capacity = capacity
        self.batch_capacity = max(1, min(batch_capacity, capacity))
        self.in_flight = 0
        self.batch_in_flight = 0
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}

    def _free(self, interactive: bool) -> bool:
        if self.in_flight >= self.capacity:
            return False
        if interactive:
            return True
        return self.batch_in_flight < self.batch_capacity and not self._waiting[True]

    def _take(self, interactive: bool) -> None:
        self.in_flight += 1
        if not interactive:
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
        if not interactive:
            self.batch_in_flight -= 1
        self._grant()

    def _grant(self) -> None:
        """Hand free slots to waiters: interactive ones first, then bulk within its share."""
        for interactive in (True, False):
            queue = self._waiting[interactive]
            while queue and self._free(interactive):
                waiter = queue.popleft()
                if not waiter.done():
                    self._take(interactive)
                    waiter.set_result(None)
