"""The job store's rows: images kept apart from item rows, and stores written by older routers."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from router.jobs import ItemOutcome, JobStore
from router.store import Store
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
from router.jobs import ItemOutcome, JobStore
from router.store import Store

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
