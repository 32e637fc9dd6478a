"""Hung replicas: one whose in-flight streams make no progress for `stall_s` while others progress.

Each replica keeps a `Progress`: the reads of its streams the router is waiting on, and when any of
them last yielded an event. The watcher (`router/dispatch/pools.py`
`watch_stalls`) asks `stalled()` every tick; a replica it names is marked down and `stall()` fails
every read in flight on it at once (`EngineTimeout`, retryable), so requests waiting for a first
token are retried elsewhere and answers mid-stream migrate, within `stall_s` plus a tick.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from engines.base import GenerationEvent
from engines.errors import EngineTimeout


class Progress:
    """The reads waiting on a replica and its streams' last sign of life; reads through it can be aborted."""

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._clock = clock
        self.last_event = float("-inf")
        self.stalled_for = 0.0  # > 0 while marked stalled: reads fail at once
        self._reads: dict[asyncio.Task[object], float] = {}  # tasks awaiting an event, since when
        self._aborting: set[asyncio.Task[object]] = set()

    @property
    def waiting(self) -> int:
        """Reads waiting on the replica now."""
        return len(self._reads)

    def idle_s(self, now: float) -> float:
        """How long the router has waited on this replica with nothing coming: since its last event or
        the oldest read still waiting, whichever is later (0 while no read waits: a stream its caller
        is slow to read is no sign of a hung engine)."""
        if not self._reads:
            return 0.0
        return now - max(self.last_event, min(self._reads.values()))

    def moved_within(self, now: float, seconds: float) -> bool:
        """Whether some stream of this replica yielded an event in the last `seconds`."""
        return now - self.last_event < seconds

    async def read(self, events: AsyncIterator[GenerationEvent]) -> GenerationEvent:
        """The stream's next event; `EngineTimeout` at once if the replica is (or becomes) stalled.

        A stall cancels the reading task and takes its own cancel back (as `asyncio.timeout` does; a
        timeout context per read cost 3 us a token, this costs under 1)."""
        self._check()
        task = asyncio.current_task()
        assert task is not None
        self._reads[task] = self._clock()
        try:
            event = await anext(events)
        except asyncio.CancelledError:
            if task not in self._aborting:
                raise
            self._aborting.discard(task)
            if task.uncancel() > 0:  # cancelled from elsewhere too: that cancel wins
                raise
            self._check()
            raise
        finally:
            del self._reads[task]
            if task in self._aborting:  # the stream swallowed our cancel: take it back
                self._aborting.discard(task)
                task.uncancel()
        self.last_event = self._clock()
        return event

    def stall(self, idle_s: float) -> int:
        """Mark the replica stalled and fail the reads in flight on it; returns how many."""
        self.stalled_for = max(idle_s, 1e-9)
        for task in self._reads:
            self._aborting.add(task)
            task.cancel(f"{self.name} stalled")
        return len(self._reads)

    def resume(self) -> None:
        """The replica is back (its health check passed again): reads go through again."""
        self.stalled_for = 0.0

    def _check(self) -> None:
        if self.stalled_for:
            raise EngineTimeout(
                f"{self.name}: no progress on its streams for {self.stalled_for:.1f} s while other replicas"
                " progressed (pools.<name>.stall_s): marked hung, failed over"
            )


@dataclass(frozen=True)
class Watched:
    """One replica under watch: its progress and its stall limit (seconds; 0: not watched)."""

    progress: Progress
    stall_s: float


def stalled(watched: Sequence[Watched], now: float) -> list[Watched]:
    """Replicas not yet marked whose streams made no progress for their `stall_s` while another
    replica's streams moved within that time (so a slow moment for every replica is no stall)."""
    found = []
    for w in watched:
        p = w.progress
        if not w.stall_s or p.stalled_for or p.idle_s(now) <= w.stall_s:
            continue
        if any(o is not w and o.progress.moved_within(now, w.stall_s) for o in watched):
            found.append(w)
    return found
