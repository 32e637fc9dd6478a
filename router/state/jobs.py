"""Durable bulk jobs: staged submission, a worker loop that resumes after restarts, results.

Exactly-once: an item moves pending -> running -> finished; its result is written by one guarded
UPDATE (`WHERE status = 'running' AND owner = <this process>`), so a canceled item is never
overwritten and a crash between the engine call and the write just runs the item again, storing one
result. A claim records the owner and a lease the owner renews (router/state/leases.py); an item whose
lease ran out, or whose owner was a process of this host that is gone, is claimed again by any
replica. Start-up never touches a live peer's items. `items.attempts` counts claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import astuple
from typing import Any

from router.errors import (
    DeadlineExceeded,
    ImageTooLarge,
    JobFinished,
    JobNotFound,
    JobTooLarge,
    MissingField,
    OptionOutOfRange,
    RouterError,
    shown,
)
from router.flow.pipeline import ItemOutcome, Pipeline
from router.state.leases import dead_here, new_owner
from router.state.serialize import (
    detection_from_dict,
    detection_to_dict,
    image_sent_from_dict,
    image_sent_to_dict,
    options_from_dict,
    options_to_dict,
    usage_from_dict,
    usage_to_dict,
    verdict_from_dict,
    verdict_to_dict,
)
from router.state.store import Store
from router.types import (
    BatchItemInput,
    BatchOptions,
    BatchState,
    Cost,
    ItemResult,
    ItemStatus,
    JobView,
    Migration,
    RequestKind,
    Route,
)

log = logging.getLogger(__name__)
FINISHED = ("succeeded", "failed", "canceled")
MAX_ITEM_TIMEOUT_S = 86400.0  # BatchOptions.item_timeout: a day at most
STALE_STAGING_S = 600.0  # an upload silent this long is abandoned, whoever was receiving it


def _outcome_to_json(outcome: ItemOutcome) -> tuple[str, str]:
    """(status, result JSON) for a finished item."""
    done = outcome.done
    data: dict[str, Any] = {
        "detection": detection_to_dict(outcome.detection) if outcome.detection else None,
        "error": [outcome.error_code, outcome.error_message, outcome.error_reason] if outcome.error_code else None,
    }
    if done is not None:
        r = done.route
        data.update(
            answer=done.answer,
            degraded=done.degraded,
            usage=usage_to_dict(done.usage),
            cost=[done.cost.prompt_usd, done.cost.completion_usd],
            route=[r.kind.value, r.pool, r.engine, r.replica, r.model, list(r.fallback_from)],
            migrations=[astuple(m) for m in r.migrations],
            verdict=verdict_to_dict(done.verdict) if done.verdict else None,
            image=image_sent_to_dict(done.image) if done.image else None,
        )
    return ("failed" if outcome.error_code else "succeeded"), json.dumps(data, separators=(",", ":"))


def _result_from_row(idx: int, item_id: str, status: str, raw: str | None) -> ItemResult:
    if not raw:
        return ItemResult(index=idx, item_id=item_id, status=ItemStatus(status))
    data = json.loads(raw)
    route = None
    if data.get("route"):
        k, pool, engine, replica, model, fb = data["route"]
        moves = tuple(Migration(*m) for m in data.get("migrations") or ())
        route = Route(RequestKind(k), pool, engine, replica, model, tuple(fb), moves)
    err = [*(data.get("error") or ()), "", "", ""]  # results stored before reasons existed have two
    cost = data.get("cost") or [0.0, 0.0]
    return ItemResult(
        index=idx,
        item_id=item_id,
        status=ItemStatus(status),
        detection=detection_from_dict(data["detection"]) if data.get("detection") else None,
        answer=data.get("answer", ""),
        route=route,
        usage=usage_from_dict(data.get("usage") or {}),
        cost=Cost(cost[0], cost[1]),
        error_code=err[0],
        error_message=err[1],
        error_reason=err[2],
        degraded=bool(data.get("degraded")),
        verdict=verdict_from_dict(data["verdict"]) if data.get("verdict") else None,
        image=image_sent_from_dict(data["image"]) if data.get("image") else None,
    )


def _view(conn: sqlite3.Connection, job_id: str) -> JobView | None:
    row = conn.execute(
        "SELECT created, updated, canceled, display_name, options, total FROM jobs WHERE id = ? AND staging = 0",
        (job_id,),
    ).fetchone()
    if row is None:
        return None
    created, updated, canceled, name, options, total = row
    counts = dict(conn.execute("SELECT status, COUNT(*) FROM items WHERE job_id = ? GROUP BY status", (job_id,)))
    pending = counts.get("pending", 0) + counts.get("running", 0)
    if canceled:
        state = BatchState.CANCELED
    elif pending == 0:
        state = BatchState.COMPLETED
    elif pending < total or counts.get("running", 0):
        state = BatchState.RUNNING
    else:
        state = BatchState.QUEUED
    return JobView(
        job_id=job_id,
        state=state,
        display_name=name,
        total=total,
        pending=pending,
        succeeded=counts.get("succeeded", 0),
        failed=counts.get("failed", 0),
        canceled=counts.get("canceled", 0),
        created=created,
        updated=updated,
        detect_only=bool(json.loads(options).get("detect_only")),
    )


class JobStore:
    """Job and item rows, and change notification for watchers."""

    def __init__(self, store: Store, *, lease_s: float = 15.0) -> None:
        self._store = store
        self.owner = new_owner()  # this process, on the items it runs and the jobs it stages
        self.lease_s = lease_s
        self._changed: dict[str, asyncio.Event] = {}
        self.work_available = asyncio.Event()
        self.running: dict[str, set[asyncio.Future[list[ItemOutcome]]]] = {}

    def notify(self, job_id: str) -> None:
        event = self._changed.pop(job_id, None)
        if event is not None:
            event.set()

    async def wait_change(self, job_id: str, timeout_s: float) -> None:
        """Return after the job changes, or after timeout_s (watchers re-read either way)."""
        event = self._changed.setdefault(job_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout_s)

    async def submit(
        self, options: BatchOptions, items: AsyncIterator[BatchItemInput], *, max_items: int, max_image_bytes: int
    ) -> JobView:
        """Stage items as they arrive; accept the job only when the stream ended cleanly."""
        if not 0 <= options.item_timeout_s <= MAX_ITEM_TIMEOUT_S:
            raise OptionOutOfRange(
                f"options.item_timeout is {options.item_timeout_s:g} s; give a positive duration of at most "
                f"{MAX_ITEM_TIMEOUT_S:g} s",
                field="options.item_timeout",
                metadata={"max_seconds": f"{MAX_ITEM_TIMEOUT_S:g}"},
            )
        job_id = "job_" + secrets.token_urlsafe(12)
        now = time.time()
        opts = json.dumps(options_to_dict(options))
        await self._store.run(
            lambda c: c.execute(
                "INSERT INTO jobs (id, created, updated, display_name, options, total, owner)"
                " VALUES (?, ?, ?, ?, ?, 0, ?)",
                (job_id, now, now, options.display_name, opts, self.owner),
            )
        )
        count = 0
        chunk: list[tuple[Any, ...]] = []

        async def flush() -> None:
            rows = list(chunk)
            chunk.clear()

            def insert(c: sqlite3.Connection) -> None:
                c.executemany("INSERT INTO items (job_id, idx, item_id, question, image) VALUES (?, ?, ?, ?, x'')",
                              [r[:4] for r in rows])  # fmt: skip
                c.executemany("INSERT INTO item_images (job_id, idx, image) VALUES (?, ?, ?)",
                              [(r[0], r[1], r[4]) for r in rows])  # fmt: skip
                c.execute("UPDATE jobs SET updated = ? WHERE id = ?", (time.time(), job_id))  # still arriving

            await self._store.run(insert)

        try:
            async for item in items:
                where = f"item {count}" + (f" (item_id '{shown(item.item_id)}')" if item.item_id else "")
                meta = {"item": str(count), "item_id": item.item_id}
                if count >= max_items:
                    raise JobTooLarge(
                        f"the job has more than {max_items} items (limits.max_batch_items); split it",
                        metadata={"limit": str(max_items)},
                    )
                if not item.image:
                    raise MissingField(
                        f"{where}: image is empty; send JPEG, PNG or WebP bytes", field="item.image", metadata=meta
                    )
                if len(item.image) > max_image_bytes:
                    raise ImageTooLarge(
                        f"{where}: image is {len(item.image)} bytes; the limit is {max_image_bytes}"
                        " (limits.max_image_bytes)",
                        field="item.image",
                        metadata=meta | {"limit": str(max_image_bytes), "size": str(len(item.image))},
                    )
                if not options.detect_only and not (item.question.strip() or options.default_question.strip()):
                    raise MissingField(
                        f"{where}: no question and no options.default_question", field="item.question", metadata=meta
                    )
                chunk.append((job_id, count, item.item_id, item.question, item.image))
                count += 1
                if len(chunk) >= 64:
                    await flush()
            if count == 0:
                raise MissingField("the job has no items: stream at least one BatchItem", field="item")
            await flush()
        except BaseException:
            await asyncio.shield(self._store.run(lambda c: self._delete(c, job_id)))
            raise

        def accept(c: sqlite3.Connection) -> JobView | None:
            c.execute("UPDATE jobs SET staging = 0, total = ? WHERE id = ?", (count, job_id))
            return _view(c, job_id)

        view = await self._store.run(accept)
        assert view is not None
        self.work_available.set()
        return view

    @staticmethod
    def _delete(conn: sqlite3.Connection, job_id: str) -> None:
        conn.execute("DELETE FROM items WHERE job_id = ?", (job_id,))
        conn.execute("DELETE FROM item_images WHERE job_id = ?", (job_id,))
        conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    async def get(self, job_id: str) -> JobView:
        if not job_id:
            raise MissingField("job_id is required (from SubmitBatch)", field="job_id")
        view = await self._store.run(lambda c: _view(c, job_id))
        if view is None:
            message = f"batch job '{shown(job_id)}' does not exist"
            raise JobNotFound(message, field="job_id", metadata={"job_id": job_id})
        return view

    async def cancel(self, job_id: str) -> JobView:
        view = await self.get(job_id)
        if view.state in (BatchState.COMPLETED, BatchState.CANCELED):
            raise JobFinished(
                f"batch job '{job_id}' already ended ({view.state.value}); nothing to cancel",
                metadata={"job_id": job_id, "state": view.state.name},
            )

        def mark(c: sqlite3.Connection) -> JobView | None:
            c.execute("UPDATE jobs SET canceled = 1, updated = ? WHERE id = ?", (time.time(), job_id))
            c.execute(
                "UPDATE items SET status = 'canceled', image = x''"
                " WHERE job_id = ? AND status IN ('pending', 'running')",
                (job_id,),
            )
            c.execute("DELETE FROM item_images WHERE job_id = ?", (job_id,))
            return _view(c, job_id)

        view2 = await self._store.run(mark)
        for task in self.running.get(job_id, ()):  # abort items in flight (their engine streams close)
            task.cancel()
        self.notify(job_id)
        assert view2 is not None
        return view2

    async def results(self, job_id: str, offset: int, limit: int, finished_only: bool) -> list[ItemResult]:
        await self.get(job_id)

        def select(c: sqlite3.Connection) -> list[tuple[Any, ...]]:
            sql = "SELECT idx, item_id, status, result FROM items WHERE job_id = ? AND idx >= ?"
            if finished_only:
                sql += " AND status IN ('succeeded', 'failed', 'canceled')"
            sql += " ORDER BY idx" + (" LIMIT ?" if limit else "")
            args: tuple[Any, ...] = (job_id, offset, limit) if limit else (job_id, offset)
            return c.execute(sql, args).fetchall()

        rows = await self._store.run(select)
        return [_result_from_row(*row) for row in rows]

    def recover(self) -> int:
        """At start: items whose owner was a process of this host that is gone go back to pending, and
        uploads such a process (or one silent for STALE_STAGING_S) left staged go; live peers' work
        stays. Owner NULL: rows of a router from before leases. Returns the items put back."""

        def reset(c: sqlite3.Connection) -> int:
            now = time.time()
            for job_id, owner, updated in c.execute("SELECT id, owner, updated FROM jobs WHERE staging = 1").fetchall():
                if owner is None or dead_here(owner) or updated < now - STALE_STAGING_S:
                    self._delete(c, job_id)
            owners = [o for (o,) in c.execute("SELECT DISTINCT owner FROM items WHERE status = 'running'")]
            back = 0
            for owner in (o for o in owners if o is None or dead_here(o)):
                back += c.execute(
                    "UPDATE items SET status = 'pending', owner = NULL, lease_until = NULL"
                    " WHERE status = 'running' AND owner IS ?",
                    (owner,),
                ).rowcount
            return back

        return self._store.run_sync(reset)

    async def renew(self) -> int:
        """Extend the lease on every item this process runs; returns how many."""
        until = time.time() + self.lease_s
        return await self._store.run(
            lambda c: (
                c.execute(
                    "UPDATE items SET lease_until = ? WHERE owner = ? AND status = 'running'", (until, self.owner)
                ).rowcount
            )
        )

    async def claim(self) -> tuple[str, int, bytes, str, BatchOptions] | None:
        """Take one item (see `claim_many`)."""
        claimed = await self.claim_many(1)
        return claimed[0] if claimed else None

    async def claim_many(self, limit: int) -> list[tuple[str, int, bytes, str, BatchOptions]]:
        """Take an item whose owner's lease ran out, else the oldest pending item of a live job (FIFO
        across jobs), and mark it running under this process's lease; of a detect-only job, up to
        `limit` of its items at once (they run as one batch); [] when there is none."""

        def take(c: sqlite3.Connection) -> list[tuple[str, int, bytes, str, BatchOptions]]:
            # Index lookups, no sort: the oldest live job with such items, then its lowest index.
            # (One query ordering the joined rows sorted every pending item's image through a temp
            # b-tree: 8 ms per claim at 1,000 pending items.)
            now = time.time()
            for status, lapsed in (("running", " AND i.lease_until < ?"), ("pending", "")):
                args: tuple[Any, ...] = (status, now) if lapsed else (status,)
                job = c.execute(
                    "SELECT j.id, j.options FROM jobs j WHERE j.staging = 0 AND j.canceled = 0 AND EXISTS"
                    f" (SELECT 1 FROM items i WHERE i.status = ? AND i.job_id = j.id{lapsed}) ORDER BY j.created"
                    " LIMIT 1",
                    args,
                ).fetchone()
                if job is not None:
                    break
            else:
                return []
            options = options_from_dict(json.loads(job[1]))
            rows = c.execute(
                "SELECT i.idx, COALESCE(m.image, i.image), i.question FROM items i LEFT JOIN item_images m"
                f" ON m.job_id = i.job_id AND m.idx = i.idx WHERE i.status = ? AND i.job_id = ?{lapsed}"
                " ORDER BY i.idx LIMIT ?",
                (status, job[0], *args[1:], limit if options.detect_only else 1),
            ).fetchall()
            c.executemany(
                "UPDATE items SET status = 'running', attempts = attempts + 1, owner = ?, lease_until = ?"
                " WHERE job_id = ? AND idx = ?",
                [(self.owner, now + self.lease_s, job[0], row[0]) for row in rows],
            )
            return [(job[0], row[0], bytes(row[1]), row[2], options) for row in rows]

        return await self._store.run(take)

    async def finish(self, job_id: str, idx: int, outcome: ItemOutcome) -> bool:
        """Store an item's one result; False when it was canceled meanwhile, or another replica
        reclaimed it after this process's lease ran out (that replica stores its result)."""
        return (await self.finish_many(job_id, [(idx, outcome)]))[0]

    async def finish_many(self, job_id: str, outcomes: list[tuple[int, ItemOutcome]]) -> list[bool]:
        """Store items' results in one transaction; each False as in `finish`."""
        rows = [(idx, *_outcome_to_json(outcome)) for idx, outcome in outcomes]

        def write(c: sqlite3.Connection) -> list[bool]:
            stored = []
            for idx, status, result in rows:
                cur = c.execute(
                    "UPDATE items SET status = ?, result = ?, image = x'', owner = NULL, lease_until = NULL"
                    " WHERE job_id = ? AND idx = ? AND status = 'running' AND owner = ?",
                    (status, result, job_id, idx, self.owner),
                )
                if cur.rowcount == 1:
                    c.execute("DELETE FROM item_images WHERE job_id = ? AND idx = ?", (job_id, idx))
                stored.append(cur.rowcount == 1)
            c.execute("UPDATE jobs SET updated = ? WHERE id = ?", (time.time(), job_id))
            return stored

        stored = await self._store.run(write)
        self.notify(job_id)
        return stored


class JobRunner:
    """`workers` tasks that claim pending items and run them through the pipeline at BATCH priority."""

    def __init__(
        self,
        jobs: JobStore,
        pipeline: Pipeline,
        *,
        workers: int,
        poll_s: float,
        item_timeout_s: float = 300.0,
        detect_batch: int = 16,
    ) -> None:
        self._jobs = jobs
        self._detect_batch = detect_batch  # a detect-only job's items claimed and detected together
        self._item_timeout_s = item_timeout_s
        self._pipeline = pipeline
        self._workers = workers
        self._poll_s = poll_s
        self._tasks: list[asyncio.Task[None]] = []
        self._keeper: asyncio.Task[None] | None = None
        self._draining = False

    def start(self) -> None:
        resumed = self._jobs.recover()
        if resumed:
            log.info("resuming %d bulk items left running by a previous router", resumed)
        self._tasks = [asyncio.create_task(self._work(), name=f"batch-worker-{i}") for i in range(self._workers)]
        self._keeper = asyncio.create_task(self._keep_leases(), name="batch-leases")

    async def _keep_leases(self) -> None:
        """Renew this process's item leases three times per lease, for as long as it runs."""
        while True:
            await asyncio.sleep(self._jobs.lease_s / 3)
            try:
                await self._jobs.renew()
            except Exception:  # a store error: the next round tries again before the lease runs out
                log.exception("bulk leases: renewal failed")

    async def _work(self) -> None:
        while not self._draining:
            try:
                await self._step()
            except Exception:  # a store error, or a bug: log it and go on (a dead worker stalls every job)
                log.exception("bulk worker: unexpected error; going on in %.1f s", self._poll_s)
                await asyncio.sleep(self._poll_s)

    async def _step(self) -> None:
        """Claim one item (of a detect-only job, a batch of them) and run it to its one stored result
        (or wait a while for work)."""
        claimed = await self._jobs.claim_many(self._detect_batch)
        if not claimed:
            self._jobs.work_available.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._jobs.work_available.wait(), self._poll_s)
            return
        job_id, _, _, _, options = claimed[0]
        if options.detect_only:  # the items go to the detectors as whole batches
            work = self._pipeline.detect_items([c[2] for c in claimed])
        else:
            work = self._one(claimed[0][2], claimed[0][3], options)
        outcomes = await self._supervised(job_id, asyncio.ensure_future(work), options, len(claimed))
        if outcomes is None:
            return  # CancelBatch canceled the items; their rows already say so
        # Guarded: an item CancelBatch ended meanwhile keeps its CANCELED row.
        stored = await self._jobs.finish_many(job_id, [(c[1], o) for c, o in zip(claimed, outcomes, strict=True)])
        for outcome, ok in zip(outcomes, stored, strict=True):
            if ok:
                self._pipeline.metrics.batch_items.labels("failed" if outcome.error_code else "succeeded").inc()

    async def _one(self, image: bytes, question: str, options: BatchOptions) -> list[ItemOutcome]:
        return [await self._pipeline.answer_item(image, question, options)]

    async def _supervised(
        self, job_id: str, task: asyncio.Future[list[ItemOutcome]], options: BatchOptions, n: int
    ) -> list[ItemOutcome] | None:
        """The items' outcomes: stopped after the item timeout, None when CancelBatch canceled them."""
        tasks = self._jobs.running.setdefault(job_id, set())
        tasks.add(task)
        limit = options.item_timeout_s or self._item_timeout_s
        try:
            done, _ = await asyncio.wait({task}, timeout=limit)  # a worker being stopped raises here
            if not done:  # a hung engine must not hold a bulk slot for ever
                task.cancel()
                await asyncio.wait({task})
                message = (
                    f"the item took longer than {limit:g} s (options.item_timeout, else "
                    "batch.item_timeout_s) and was stopped; the rest of the job goes on"
                )
                return [ItemOutcome.failed(DeadlineExceeded(message))] * n
            if task.cancelled():
                return None
            return task.result()
        except asyncio.CancelledError:
            task.cancel()  # the worker itself is stopping: stop the items too
            raise
        except Exception as exc:  # answer_item returns failures as outcomes: this is a bug below it
            log.error("bulk items of %s raised", job_id, exc_info=exc)
            return [ItemOutcome.failed(RouterError(f"internal error (see the router log): {exc!r}"))] * n
        finally:
            tasks.discard(task)
            if not tasks:
                self._jobs.running.pop(job_id, None)

    async def drain(self, grace_s: float) -> None:
        """Claim no more items; give the ones in flight `grace_s` to finish, then stop the rest."""
        self._draining = True
        self._jobs.work_available.set()  # wake idle workers so they notice
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace_s)
        await self.stop()

    async def stop(self) -> None:
        """Stop the workers; items they held stay `running` until their lease runs out (or this
        process is gone, for a router on the same host), then any replica runs them."""
        keeper = [self._keeper] if self._keeper is not None else []
        for t in [*self._tasks, *keeper]:
            t.cancel()
        await asyncio.gather(*self._tasks, *keeper, return_exceptions=True)
        self._tasks, self._keeper = [], None
