"""A streaming call's sends, pipelined: the producer of the next message never waits for grpc.

grpc takes one send at a time, and each completes through its poller thread (a round trip that cost
0.22 ms median before an Ask could dispatch, on the 2-core CI machine). Each send here is a task that
waits for the one before it, then converts its event and writes it, so producing the next event (for
Ask: opening the engine request) overlaps both the conversion (0.13 ms for a detection event) and
grpc completing the earlier sends. At most `depth` sends are in flight: a client that stops reading
stops the producer too (grpc's flow control, as before).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def _retrieved(send: asyncio.Future[None]) -> None:
    """Consume a send's outcome (a failed one is reported through the handler's own path)."""
    if not send.cancelled():
        send.exception()


async def _after(previous: asyncio.Future[None] | None, send: Callable[[], Awaitable[None]]) -> None:
    if previous is not None:
        await previous
    await send()


class Sends:
    """The sends of one call in order, up to `depth` in flight; `first` is already under way."""

    def __init__(self, first: asyncio.Future[None], depth: int = 8) -> None:
        self._flight: deque[asyncio.Future[None]] = deque([first])
        self._last: asyncio.Future[None] = first
        self._depth = depth
        first.add_done_callback(_retrieved)

    async def add(self, send: Callable[[], Awaitable[None]]) -> None:
        """Queue `send` after the others; waits only while `depth` sends are in flight."""
        while len(self._flight) >= self._depth:
            await self._flight.popleft()
        while self._flight and self._flight[0].done():
            self._flight.popleft().result()  # a failed send ends the call now
        self._last = asyncio.ensure_future(_after(self._last if not self._last.done() else None, send))
        self._last.add_done_callback(_retrieved)
        self._flight.append(self._last)

    async def drain(self) -> None:
        """Wait for every send (the last waits for those before it); raises a failed send's error."""
        await self._last
        for send in self._flight:
            send.result()

    async def settle(self, timeout_s: float) -> None:
        """Let the sends in flight finish before a status goes out, for at most `timeout_s` (a client
        that stopped reading blocks them)."""
        if not self._last.done():
            await asyncio.wait((self._last,), timeout=timeout_s)

    def cancel(self) -> None:
        """Cancel every send still in flight."""
        for send in self._flight:
            send.cancel()
