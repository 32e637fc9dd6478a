"""A long-lived worker thread that batches queued images across concurrent requests."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_STOP = object()


BATCH_SIZE = "batch_size"  # the attribute a finished item's future carries: the batch it ran in


class BatchWorker(Generic[T, R]):
    """Runs `fn(batch)` on one thread; a batch is whatever is queued (up to `max_batch`).

    After taking the first item it waits up to `wait_s` for more (0 = take only what is already
    queued: no added latency, yet requests that arrive while a batch runs share the next one).
    Items whose future was cancelled (their request gave up) are skipped, never run.
    """

    def __init__(self, fn: Callable[[list[T]], list[R]], *, name: str, max_batch: int = 16, wait_s: float = 0.0):
        self._fn = fn
        self._max = max(1, max_batch)
        self._wait_s = wait_s
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.batches = 0  # batches run so far
        self.items = 0  # items run so far
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> Future[R]:
        """Queue one item; its future resolves with fn's result for it."""
        future: Future[R] = Future()
        self._queue.put((item, future))
        return future

    def call(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run `fn` on the worker thread (loading weights, warm-up) between batches."""
        future: Future[Any] = Future()
        self._queue.put((fn, future, None))
        return future

    def submit_many(self, items: list[T]) -> list[Future[R]]:
        """Queue items that run together: each batch of `max_batch` of them is one forward pass (a bulk
        job's items), not merged with others. Their futures resolve one per item, like `submit`'s."""
        futures: list[Future[R]] = [Future() for _ in items]
        for i in range(0, len(items), self._max):
            self._queue.put(list(zip(items[i : i + self._max], futures[i : i + self._max], strict=True)))
        return futures

    def submit_batch(self, items: list[T]) -> Future[list[R]]:
        """Run `fn` on exactly these items as one batch (benchmarks, bulk scoring)."""
        return self.call(lambda: self._fn(items))

    def _take(self) -> list[tuple[T, Future[R]]]:
        first = self._queue.get()
        if isinstance(first, list):  # a group from submit_many: one batch as it is
            return [(item, f) for item, f in first if not f.cancelled()]
        if first is _STOP or len(first) == 3:
            return [first]
        batch = [first]
        until = time.monotonic() + self._wait_s
        while len(batch) < self._max:
            try:
                nxt = (
                    self._queue.get(timeout=max(0.0, until - time.monotonic()))
                    if self._wait_s
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if nxt is _STOP or isinstance(nxt, list) or len(nxt) == 3:
                self._queue.put(nxt)  # run it after this batch
                break
            if not nxt[1].cancelled():  # its request gave up: drop it without taking a slot
                batch.append(nxt)
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if not batch:  # a group whose every item gave up
                continue
            if batch[0] is _STOP:
                return
            if len(batch[0]) == 3:
                fn, future, _ = batch[0]
                if future.set_running_or_notify_cancel():
                    _settle(future, fn)
                continue
            live = [(item, f) for item, f in batch if f.set_running_or_notify_cancel()]
            if not live:
                continue
            self.batches += 1
            self.items += len(live)
            try:
                results = self._fn([item for item, _ in live])
            except Exception as exc:  # the whole batch failed: every request hears why
                for _, f in live:
                    f.set_exception(exc)
                continue
            for (_, f), r in zip(live, results, strict=True):
                setattr(f, BATCH_SIZE, len(live))
                f.set_result(r)

    def close(self, timeout_s: float = 5.0) -> None:
        """Finish the queued work, then stop the thread (waiting up to `timeout_s` for it)."""
        self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)


def _settle(future: Future[Any], fn: Callable[[], Any]) -> None:
    try:
        future.set_result(fn())
    except BaseException as exc:  # reported to whoever waits on it
        future.set_exception(exc)
