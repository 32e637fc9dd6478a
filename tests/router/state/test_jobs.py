"""The job store's rows on both backends (SQLite and PostgreSQL): images kept apart from item rows,
claims under leases, several processes sharing one store."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from router.state.jobs import WATCH_POLL_S, ItemOutcome, JobStore
from router.state.store import Store, Tx, open_store
from router.types import BatchItemInput, BatchOptions, BatchState, ItemResult, JobView


async def opened(url: str) -> Store:
    """The store at `url` (a SQLite path or a postgresql:// URL), connected and migrated."""
    store = open_store(url, path=url)
    await store.open()
    return store


async def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    return (await store.run(lambda tx: tx.execute(sql))).rows


async def _items(n: int) -> AsyncIterator[BatchItemInput]:
    for i in range(n):
        yield BatchItemInput(image=bytes([i]) * 1000, item_id=str(i))


async def test_images_live_apart_and_go_when_items_finish(store_url: str) -> None:
    store = await opened(store_url)
    jobs = JobStore(store)
    view = await jobs.submit(BatchOptions(detect_only=True), _items(3), max_items=10, max_image_bytes=10_000)
    assert await rows(store, "SELECT SUM(LENGTH(image)) FROM items") == [(0,)], "item rows carry no image bytes"
    claimed = await jobs.claim()
    assert claimed is not None and claimed[:3] == (view.job_id, 0, bytes([0]) * 1000)
    assert await jobs.finish(view.job_id, 0, ItemOutcome(error_code="INVALID_ARGUMENT", error_message="x"))
    assert await rows(store, "SELECT idx FROM item_images ORDER BY idx") == [(1,), (2,)]
    await jobs.cancel(view.job_id)
    assert await rows(store, "SELECT COUNT(*) FROM item_images") == [(0,)]
    await store.close()


async def test_images_stored_inline_by_an_older_router_are_still_claimed(store_url: str) -> None:
    store = await opened(store_url)
    jobs = JobStore(store)
    await jobs.submit(BatchOptions(detect_only=True), _items(2), max_items=10, max_image_bytes=10_000)

    async def old_layout(tx: Tx) -> None:
        await tx.execute("UPDATE items SET image = (SELECT m.image FROM item_images m WHERE m.job_id = items.job_id"
                         " AND m.idx = items.idx)")  # fmt: skip
        await tx.execute("DELETE FROM item_images")

    await store.run(old_layout)
    claimed = await jobs.claim()
    assert claimed is not None and claimed[2] == bytes([0]) * 1000
    await store.close()


CLAIMER = """
import asyncio, os, sys, time
from router.state.jobs import WATCH_POLL_S, ItemOutcome, JobStore
from router.state.store import open_store

async def main() -> None:
    store = open_store(sys.argv[1], path=sys.argv[1])
    await store.open()
    jobs = JobStore(store)
    print("ready", flush=True)
    while not os.path.exists(sys.argv[2]):  # start together
        time.sleep(0.01)
    while (c := await jobs.claim()) is not None:
        await jobs.finish(c[0], c[1], ItemOutcome(error_code="X", error_message="done"))
        print(c[1], flush=True)

asyncio.run(main())
"""


async def test_processes_sharing_the_store_claim_each_item_once(store_url: str, tmp_path: Path) -> None:
    """Several router processes on one store (one per core, or per host) never claim an item twice."""
    store = await opened(store_url)
    await JobStore(store).submit(BatchOptions(detect_only=True), _items(150), max_items=1000, max_image_bytes=10_000)
    await store.close()
    go = tmp_path / "go"
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLAIMER, store_url, str(go), stdout=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    for p in procs:  # imported and connected
        assert p.stdout is not None and await p.stdout.readline() == b"ready\n"
    await asyncio.to_thread(go.touch)
    outs = [(await p.communicate())[0].decode().split() for p in procs]
    claimed = [int(i) for out in outs for i in out]
    assert sorted(claimed) == list(range(150)), "every item claimed exactly once"
    assert sum(1 for out in outs if out) >= 2, "the claims were shared between processes"


async def _one_job(store: Store, n: int = 2) -> str:
    view = await JobStore(store).submit(BatchOptions(detect_only=True), _items(n), max_items=10, max_image_bytes=10_000)
    return view.job_id


def _done(tag: str) -> ItemOutcome:
    return ItemOutcome(error_code="X", error_message=tag)


async def test_a_starting_replica_leaves_a_live_peers_items_running(store_url: str) -> None:
    """The bug of issue 15: a worker starting up used to put its peers' in-flight items back to
    pending, and they ran twice."""
    store = await opened(store_url)
    job = await _one_job(store)
    a, b = JobStore(store, lease_s=60), JobStore(store, lease_s=60)
    held = await a.claim()
    assert held is not None and held[1] == 0
    assert await b.recover() == 0  # b starts: a is alive
    taken = await b.claim()
    assert taken is not None and taken[1] == 1, "b takes the next item, not a's"
    assert await b.claim() is None
    assert await a.finish(job, 0, _done("a")) and await b.finish(job, 1, _done("b"))
    await store.close()


async def test_an_expired_lease_is_reclaimed_and_the_late_owner_stores_nothing(store_url: str) -> None:
    store = await opened(store_url)
    job = await _one_job(store, 1)
    a, b = JobStore(store, lease_s=0.3), JobStore(store, lease_s=60)
    assert await a.claim() is not None
    assert await b.claim() is None  # a's lease holds
    await asyncio.sleep(0.4)  # a stalls past its lease without renewing
    again = await b.claim()
    assert again is not None and again[1] == 0
    assert not await a.finish(job, 0, _done("a")), "the late owner's result is refused"
    assert await b.finish(job, 0, _done("b"))
    results = await b.results(job, 0, 10, finished_only=True)
    assert [r.error_message for r in results] == ["b"]  # exactly one result, the reclaimer's
    assert await rows(store, "SELECT attempts FROM items") == [(2,)]
    await store.close()


async def test_a_dead_replicas_batch_is_reclaimed_as_one_batch_before_pending_items(store_url: str) -> None:
    """Detect-only items are claimed in batches: once a replica holding one died and its leases ran out,
    one claim takes the whole lapsed batch back (one lapsed item per claim left the rest waiting
    behind every pending item: the fault test's reclaim took 34 s with an 8 s lease)."""
    store = await opened(store_url)
    job = await JobStore(store).submit(BatchOptions(detect_only=True), _items(40), max_items=40, max_image_bytes=10_000)
    a, b = JobStore(store, lease_s=0.3), JobStore(store, lease_s=60)
    assert [c[1] for c in await a.claim_many(16)] == list(range(16))
    assert [c[1] for c in await b.claim_many(4)] == [16, 17, 18, 19]  # a's leases hold: pending items
    await asyncio.sleep(0.4)  # a is gone: no renewal
    again = await b.claim_many(16)
    assert [c[1] for c in again] == list(range(16)), "the lapsed batch, whole, before pending items"
    assert [c[2] for c in again] == [bytes([i]) * 1000 for i in range(16)]
    assert [c[1] for c in await b.claim_many(8)] == list(range(20, 28))
    assert await rows(store, "SELECT COUNT(*) FROM items WHERE attempts = 2") == [(16,)]
    assert not await a.finish(job.job_id, 0, _done("a")), "the late owner's result is refused"
    await store.close()


async def test_renewal_keeps_a_lease_past_its_length(store_url: str) -> None:
    store = await opened(store_url)
    await _one_job(store, 1)
    a, b = JobStore(store, lease_s=0.3), JobStore(store, lease_s=60)
    assert await a.claim() is not None
    for _ in range(4):
        await asyncio.sleep(0.1)
        assert await a.renew() == 1
    assert await b.claim() is None, "a renewed its lease: b must not take the item"
    await store.close()


async def test_items_of_a_dead_process_on_this_host_are_put_back_at_start(store_url: str) -> None:
    """A router restarted in place need not wait for its predecessor's leases."""
    store = await opened(store_url)
    job = await _one_job(store, 2)
    await store.close()
    code = (
        "import asyncio, sys\nfrom router.state.jobs import JobStore\nfrom router.state.store import open_store\n"
        "async def main():\n    s = open_store(sys.argv[1], path=sys.argv[1])\n    await s.open()\n"
        "    j = JobStore(s, lease_s=3600)\n    print((await j.claim())[1])\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, store_url, stdout=asyncio.subprocess.PIPE)
    assert (await proc.communicate())[0].decode().split() == ["0"]  # it claimed item 0 and exited
    store = await opened(store_url)
    fresh = JobStore(store, lease_s=3600)
    assert await fresh.recover() == 1
    claimed = [await fresh.claim(), await fresh.claim()]
    assert sorted((c[0], c[1]) for c in claimed if c is not None) == [(job, 0), (job, 1)]
    await store.close()


@contextlib.asynccontextmanager
async def _two_replicas(store_url: str, items: int, *, listening: str) -> AsyncIterator[tuple[str, JobStore, JobStore]]:
    """Replicas a and b on one store (each its own connection), a job, and `listening`'s follow_peers."""
    stores = [await opened(store_url), await opened(store_url)]
    job = await _one_job(stores[0], items)
    a, b = JobStore(stores[0]), JobStore(stores[1])
    follower = asyncio.create_task((a if listening == "a" else b).follow_peers(poll_s=0.2))
    await asyncio.sleep(0.3)  # it listens
    try:
        yield job, a, b
    finally:
        follower.cancel()
        for store in stores:
            await store.close()


async def test_a_cancel_on_one_replica_stops_the_items_running_on_another(store_url: str) -> None:
    """LISTEN/NOTIFY on PostgreSQL, polling on SQLite: within a second or two either way."""
    async with _two_replicas(store_url, 2, listening="a") as (job, a, b):
        claimed = await a.claim()
        assert claimed is not None
        item = asyncio.create_task(asyncio.sleep(3600))  # an item a is running (an engine call that takes long)
        a.running[job] = {item}  # type: ignore[assignment]
        t0 = asyncio.get_running_loop().time()
        await b.cancel(job)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(item, 2.0)
        assert item.cancelled() and asyncio.get_running_loop().time() - t0 < 2.0
        assert not await a.finish(job, claimed[1], _done("late")), "the canceled item keeps its CANCELED row"


async def test_watchers_on_one_replica_see_the_items_another_finishes(store_url: str) -> None:
    """WatchBatch (`watch`) and ListBatchResults --follow (`follow_results`) on replica b see what
    replica a stores: b's own connection to the store, no change of b's own to wake it. PostgreSQL tells b
    at once (NOTIFY); on SQLite b learns it only by re-reading every WATCH_POLL_S."""
    backend = "postgresql" if store_url.startswith("postgresql://") else "sqlite"
    bound = 0.5 if backend == "postgresql" else WATCH_POLL_S + 0.6  # + a loaded machine's read
    async with _two_replicas(store_url, 2, listening="b") as (job, a, b):
        loop = asyncio.get_running_loop()
        views: list[JobView] = []
        results: list[ItemResult] = []

        async def watch() -> None:
            async for view in b.watch(job):
                views.append(view)

        async def follow() -> None:
            async for result in b.follow_results(job, 0, 0):
                results.append(result)

        watching = [asyncio.create_task(watch()), asyncio.create_task(follow())]
        await asyncio.sleep(0.2)  # both read the job once and wait
        assert [(v.state, v.pending) for v in views] == [(BatchState.QUEUED, 2)] and results == []
        waits = []
        for n in (1, 2):
            claimed = await a.claim()
            assert claimed is not None and await a.finish(job, claimed[1], _done(f"from a {n}"))
            t0 = loop.time()
            while not (views[-1].failed == n and len(results) == n):
                assert loop.time() - t0 < bound, f"b saw {views[-1]} and {len(results)} results {bound} s after"
                await asyncio.sleep(0.01)
            waits.append(loop.time() - t0)
        await asyncio.wait_for(asyncio.gather(*watching), 1.0)  # both end with the job
        assert views[-1].state is BatchState.COMPLETED and views[-1].pending == 0
        assert [(r.index, r.error_message) for r in results] == [(0, "from a 1"), (1, "from a 2")]
        print(f"\n{backend}: b saw a's items {', '.join(f'{w:.2f}' for w in waits)} s after it stored them")
