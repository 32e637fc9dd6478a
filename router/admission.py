"""Per-replica slots with two priorities: interactive requests first, bulk items in a bounded share."""

from __future__ import annotations

import asyncio


class PrioritySlots:
    """At most `capacity` requests in flight; bulk items use at most `batch_capacity` of them and
    never take a slot while an interactive request is waiting for one."""

    def __init__(self, capacity: int, batch_capacity: int) -> None:
        self.capacity = capacity
        self.batch_capacity = max(1, min(batch_capacity, capacity))
        self.in_flight = 0
        self.batch_in_flight = 0
        self._interactive_waiting = 0
        self._cond = asyncio.Condition()

    def _free(self, interactive: bool) -> bool:
        if self.in_flight >= self.capacity:
            return False
        if interactive:
            return True
        return self.batch_in_flight < self.batch_capacity and self._interactive_waiting == 0

    async def acquire(self, interactive: bool) -> None:
        async with self._cond:
            if interactive:
                self._interactive_waiting += 1
            try:
                await self._cond.wait_for(lambda: self._free(interactive))
            finally:
                if interactive:
                    self._interactive_waiting -= 1
            self.in_flight += 1
            if not interactive:
                self.batch_in_flight += 1

    async def release(self, interactive: bool) -> None:
        async with self._cond:
            self.in_flight -= 1
            if not interactive:
                self.batch_in_flight -= 1
            self._cond.notify_all()
