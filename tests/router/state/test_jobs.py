"""The job store's rows: images kept apart from item rows, and stores written by older routers."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from router.state.jobs import ItemOutcome, JobStore
from router.state.store import Store
from router.types import BatchItemInput, BatchOptions


async def _items(n: int) -> AsyncIterator[BatchItemInput]:
    for i in range(n):
        yield BatchItemInput(image=bytes([i]) * 1000, item_id=str(i))


async def test_images_live_apart_and_go_when_items_finish(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s.sqlite3"))
    jobs = JobStore(store)
    view = await jobs.submit(BatchOptions(detect_only=True), _items(3), max_items=10, max_image_bytes=10_000)
    inline = store.run_sync(lambda c: c.execute("SELECT SUM(LENGTH(image)) FROM items").fetchone()[0])
    assert inline == 0, "item rows carry no image bytes"
    claimed = await jobs.claim()
    assert claimed is not None and claimed[:3] == (view.job_id, 0, bytes([0]) * 1000)
    assert await jobs.finish(view.job_id, 0, ItemOutcome(error_code="INVALID_ARGUMENT", error_message="x"))
    left = store.run_sync(lambda c: [r[0] for r in c.execute("SELECT idx FROM item_images ORDER BY idx")])
    assert left == [1, 2]
    await jobs.cancel(view.job_id)
    assert store.run_sync(lambda c: c.execute("SELECT COUNT(*) FROM item_images").fetchone()[0]) == 0
    store.close()


async def test_images_stored_inline_by_an_older_router_are_still_claimed(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s.sqlite3"))
    jobs = JobStore(store)
    await jobs.submit(BatchOptions(detect_only=True), _items(2), max_items=10, max_image_bytes=10_000)

    def old_layout(c: sqlite3.Connection) -> None:
        c.execute("UPDATE items SET image = (SELECT m.image FROM item_images m WHERE m.job_id = items.job_id"
                  " AND m.idx = items.idx)")  # fmt: skip
        c.execute("DELETE FROM item_images")

    store.run_sync(old_layout)
    claimed = await jobs.claim()
    assert claimed is not None and claimed[2] == bytes([0]) * 1000
    store.close()


CLAIMER = """
import asyncio, os, sys, time
from router.state.jobs import ItemOutcome, JobStore
from router.state.store import Store

async def main() -> None:
    jobs = JobStore(Store(sys.argv[1]))
    while not os.path.exists(sys.argv[1] + ".go"):  # start together
        time.sleep(0.01)
    while (c := await jobs.claim()) is not None:
        await jobs.finish(c[0], c[1], ItemOutcome(error_code="X", error_message="done"))
        print(c[1], flush=True)

asyncio.run(main())
"""


async def test_processes_sharing_the_store_claim_each_item_once(tmp_path: Path) -> None:
    """Several router processes on one store file (e.g. one per core) never claim an item twice."""
    path = str(tmp_path / "s.sqlite3")
    store = Store(path)
    await JobStore(store).submit(BatchOptions(detect_only=True), _items(150), max_items=1000, max_image_bytes=10_000)
    store.close()
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", CLAIMER, path, stdout=asyncio.subprocess.PIPE)
        for _ in range(3)
    ]
    await asyncio.sleep(3)  # imports done
    await asyncio.to_thread(Path(path + ".go").touch)
    outs = [(await p.communicate())[0].decode().split() for p in procs]
    claimed = [int(i) for out in outs for i in out]
    assert sorted(claimed) == list(range(150)), "every item claimed exactly once"
    assert sum(1 for out in outs if out) >= 2, "the claims were shared between processes"


async def _one_job(store: Store, n: int = 2) -> str:
    view = await JobStore(store).submit(BatchOptions(detect_only=True), _items(n), max_items=10, max_image_bytes=10_000)
    return view.job_id


def _done(tag: str) -> ItemOutcome:
    return ItemOutcome(error_code="X", error_message=tag)


async def test_a_starting_replica_leaves_a_live_peers_items_running(tmp_path: Path) -> None:
    """The bug of issue 15: a worker starting up used to put its peers' in-flight items back to
    pending, and they ran twice."""
    store = Store(str(tmp_path / "s.sqlite3"))
    job = await _one_job(store)
    a, b = JobStore(store, lease_s=60), JobStore(store, lease_s=60)
    held = await a.claim()
    assert held is not None and held[1] == 0
    assert b.recover() == 0  # b starts: a is alive
    taken = await b.claim()
    assert taken is not None and taken[1] == 1, "b takes the next item, not a's"
    assert await b.claim() is None
    assert await a.finish(job, 0, _done("a")) and await b.finish(job, 1, _done("b"))
    store.close()


async def test_an_expired_lease_is_reclaimed_and_the_late_owner_stores_nothing(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s.sqlite3"))
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
    attempts = store.run_sync(lambda c: c.execute("SELECT attempts FROM items").fetchone()[0])
    assert attempts == 2
    store.close()


async def test_renewal_keeps_a_lease_past_its_length(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s.sqlite3"))
    await _one_job(store, 1)
    a, b = JobStore(store, lease_s=0.3), JobStore(store, lease_s=60)
    assert await a.claim() is not None
    for _ in range(4):
        await asyncio.sleep(0.1)
        assert await a.renew() == 1
    assert await b.claim() is None, "a renewed its lease: b must not take the item"
    store.close()


async def test_items_of_a_dead_process_on_this_host_are_put_back_at_start(tmp_path: Path) -> None:
    """A router restarted in place need not wait for its predecessor's leases."""
    path = str(tmp_path / "s.sqlite3")
    store = Store(path)
    job = await _one_job(store, 2)
    store.close()
    code = (
        "import asyncio, sys\nfrom router.state.jobs import JobStore\nfrom router.state.store import Store\n"
        "async def main():\n    j = JobStore(Store(sys.argv[1]), lease_s=3600)\n    print((await j.claim())[1])\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, path, stdout=asyncio.subprocess.PIPE)
    assert (await proc.communicate())[0].decode().split() == ["0"]  # it claimed item 0 and exited
    store = Store(path)
    fresh = JobStore(store, lease_s=3600)
    assert fresh.recover() == 1
    claimed = [await fresh.claim(), await fresh.claim()]
    assert sorted((c[0], c[1]) for c in claimed if c is not None) == [(job, 0), (job, 1)]
    store.close()


async def test_a_store_from_before_leases_gains_the_columns_and_resumes_its_items(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite3")
    store = Store(path)
    await _one_job(store, 1)

    def before_leases(c: sqlite3.Connection) -> None:
        c.execute("UPDATE items SET status = 'running'")
        c.execute("ALTER TABLE items DROP COLUMN owner")
        c.execute("ALTER TABLE items DROP COLUMN lease_until")
        c.execute("ALTER TABLE jobs DROP COLUMN owner")

    store.run_sync(before_leases)
    store.close()
    store = Store(path)  # migrates
    jobs = JobStore(store)
    assert jobs.recover() == 1  # owner NULL: left by a router from before leases
    assert await jobs.claim() is not None
    store.close()
