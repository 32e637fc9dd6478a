"""BatchWorker: batches what is queued, skips cancelled items, isolates failures, runs calls in order."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

from detectors.batching import BatchWorker


def test_items_queued_while_a_batch_runs_share_the_next_batch() -> None:
    gate, seen = threading.Event(), []

    def fn(items: list[int]) -> list[int]:
        seen.append(list(items))
        gate.wait(5)
        return [i * 10 for i in items]

    w: BatchWorker[int, int] = BatchWorker(fn, name="t", max_batch=3)
    first = w.submit(0)
    while not seen:  # the first batch is running
        pass
    rest = [w.submit(i) for i in range(1, 6)]
    rest[1].cancel()  # item 2 gave up before it started: never run
    gate.set()
    assert first.result(5) == 0 and [f.result(5) for f in rest if not f.cancelled()] == [10, 30, 40, 50]
    assert seen == [[0], [1, 3, 4], [5]]  # at most max_batch per batch, cancelled skipped
    assert (w.batches, w.items) == (3, 5)
    w.close()


def test_a_failing_batch_fails_its_items_only() -> None:
    def fn(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky")
        return items

    w: BatchWorker[int, int] = BatchWorker(fn, name="t", max_batch=1)
    bad, good = w.submit(13), w.submit(7)
    with pytest.raises(ValueError, match="unlucky"):
        bad.result(5)
    assert good.result(5) == 7
    w.close()


def test_calls_run_on_the_worker_thread_in_order() -> None:
    w: BatchWorker[int, int] = BatchWorker(lambda xs: xs, name="detector-x")
    names: list[str] = []
    f1: Future[None] = w.call(lambda: names.append(threading.current_thread().name))
    f2 = w.submit_batch([1, 2, 3])
    f1.result(5)
    assert names == ["detector-x"] and f2.result(5) == [1, 2, 3]
    w.close()


def test_submit_many_runs_whole_batches_of_its_own() -> None:
    gate, seen = threading.Event(), []

    def fn(items: list[int]) -> list[int]:
        seen.append(list(items))
        gate.wait(5)
        return [i + 1 for i in items]

    w: BatchWorker[int, int] = BatchWorker(fn, name="t", max_batch=4)
    first = w.submit(0)
    while not seen:  # the first batch is running
        pass
    group = w.submit_many(list(range(10, 16)))
    after = w.submit(99)
    group[1].cancel()  # gave up before its batch started: left out of it
    gate.set()
    assert [f.result(5) for f in group if not f.cancelled()] == [11, 13, 14, 15, 16]
    assert first.result(5) == 1 and after.result(5) == 100
    assert seen == [[0], [10, 12, 13], [14, 15], [99]]  # max_batch each, never merged with other requests
    w.close()
