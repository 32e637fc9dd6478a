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
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from router.errors import (
    DeadlineExceeded,
    DetectionUnavailable,
    ImageTooLarge,
    JobFinished,
    JobNotFound,
    JobTooLarge,
    MissingField,
    OptionOutOfRange,
    RouterError,
    StoreUnavailable,
    shown,
)
from router.flow.pipeline import ItemOutcome, Pipeline
from router.observe import tracing
from router.state.leases import dead_here, new_owner
from router.state.serialize import (
    detection_from_dict,
    detection_to_dict,
    image_sent_from_dict,
    image_sent_to_dict,
    options_from_dict,
    options_to_dict,
    route_from_dict,
    route_to_dict,
    usage_from_dict,
    usage_to_dict,
    verdict_from_dict,
    verdict_to_dict,
)
from router.state.store import Store, Tx
from router.types import (
    BatchItemInput,
    BatchOptions,
    BatchState,
    Cost,
    ItemResult,
    ItemStatus,
    JobView,
)

log = logging.getLogger(__name__)
FINISHED = ("succeeded", "failed", "canceled")
MAX_ITEM_TIMEOUT_S = 86400.0  # BatchOptions.item_timeout: a day at most
STALE_STAGING_S = 600.0  # an upload silent this long is abandoned, whoever was receiving it
CHANNEL = "roadwork_jobs"  # replicas tell each other "cancel:<job id>" and "change:<job id>" (PostgreSQL)
WATCH_POLL_S = 1.0  # watchers re-read at least this often: on SQLite, how they see other processes' progress
ENDED = (BatchState.COMPLETED, BatchState.CANCELED)


def _outcome_to_json(outcome: ItemOutcome) -> tuple[str, str]:
    """(status, result JSON) for a finished item."""
    done = outcome.done
    data: dict[str, Any] = {
        "detection": detection_to_dict(outcome.detection) if outcome.detection else None,
        "error": [outcome.error_code, outcome.error_message, outcome.error_reason] if outcome.error_code else None,
    }
    if done is not None:
        data.update(
            answer=done.answer,
            degraded=done.degraded,
            usage=usage_to_dict(done.usage),
            cost=[done.cost.prompt_usd, done.cost.completion_usd],
            route=route_to_dict(done.route),
            verdict=verdict_to_dict(done.verdict) if done.verdict else None,
            image=image_sent_to_dict(done.image) if done.image else None,
        )
    return ("failed" if outcome.error_code else "succeeded"), json.dumps(data, separators=(",", ":"))


def _result_from_row(idx: int, item_id: str, status: str, raw: str | None) -> ItemResult:
    if not raw:
        return ItemResult(index=idx, item_id=item_id, status=ItemStatus(status))
    data = json.loads(raw)
    route = route_from_dict(data["route"], data.get("migrations")) if data.get("route") else None
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


async def _view(tx: Tx, job_id: str) -> JobView | None:
    row = (
        await tx.execute(
            "SELECT created, updated, canceled, display_name, options, total FROM jobs WHERE id = ? AND staging = 0",
            (job_id,),
        )
    ).one()
    if row is None:
        return None
    created, updated, canceled, name, options, total = row
    counted = await tx.execute("SELECT status, COUNT(*) FROM items WHERE job_id = ? GROUP BY status", (job_id,))
    counts = {str(status): int(n) for status, n in counted.rows}
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
        self._checks: set[asyncio.Task[None]] = set()

    async def follow_peers(self, poll_s: float) -> None:
        """Hear what other replicas do to jobs: a cancel stops this process's items of that job, a
        finished item wakes its watchers here. PostgreSQL tells at once (LISTEN/NOTIFY); on SQLite
        this polls every `poll_s` for canceled jobs with items running here (watchers re-read each second)."""
        if await self._store.listen(CHANNEL, self._heard):
            return
        while True:
            await asyncio.sleep(poll_s)
            try:
                await self._stop_canceled()
            except Exception:  # a store error: the next round tries again
                log.exception("bulk jobs: checking for canceled jobs failed")

    def _heard(self, payload: str) -> None:
        kind, _, job_id = payload.partition(":")
        if kind == "cancel":
            self._stop_local(job_id)
        elif kind == "change":
            self.notify(job_id)
        else:  # (re)connected: a cancel may have been sent meanwhile
            task = asyncio.create_task(self._stop_canceled())
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    async def _stop_canceled(self) -> None:
        """Stop this process's items of jobs canceled anywhere."""
        ids = list(self.running)
        if not ids:
            return
        sql = f"SELECT id FROM jobs WHERE canceled = 1 AND id IN ({', '.join('?' * len(ids))})"
        for (job_id,) in (await self._store.run(lambda tx: tx.execute(sql, ids))).rows:
            self._stop_local(job_id)

    def _stop_local(self, job_id: str) -> None:
        runs = self.running.get(job_id, ())
        if runs:
            log.info("bulk job %s canceled: stopping its %d item run(s) in flight here", job_id, len(runs))
        for task in runs:  # abort items in flight (their engine streams close)
            task.cancel()
        self.notify(job_id)

    def notify(self, job_id: str) -> None:
        event = self._changed.pop(job_id, None)
        if event is not None:
            event.set()

    async def wait_change(self, job_id: str, timeout_s: float) -> None:
        """Return after the job changes, or after timeout_s (watchers re-read either way)."""
        event = self._changed.setdefault(job_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout_s)

    async def watch(self, job_id: str, poll_s: float = WATCH_POLL_S) -> AsyncGenerator[JobView, None]:
        """The job's view now and after each change, until it completed or was canceled (WatchBatch).
        A change made here or told by a peer (NOTIFY) wakes it at once; it re-reads every `poll_s` anyway."""
        last = None
        while True:
            view = await self.get(job_id)
            if view != last:
                yield view
                last = view
            if view.state in ENDED:
                return
            await self.wait_change(job_id, poll_s)

    async def follow_results(
        self, job_id: str, offset: int, limit: int, poll_s: float = WATCH_POLL_S
    ) -> AsyncGenerator[ItemResult, None]:
        """Results from index `offset` on, in index order, each as soon as its item ended, until the last
        item's (or `limit` of them; 0: no limit): ListBatchResults --follow. Waits as `watch` does."""
        left = limit or None
        while left is None or left > 0:
            rows = await self.results(job_id, offset, left or 0, finished_only=False)
            if not rows:
                return  # past the last item
            for r in rows:
                if r.status.value in ("pending", "running"):
                    break
                yield r
                offset = r.index + 1
                if left is not None:
                    left -= 1
            else:
                continue
            await self.wait_change(job_id, poll_s)

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
            lambda tx: tx.execute(
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

            async def insert(tx: Tx) -> None:
                await tx.executemany("INSERT INTO items (job_id, idx, item_id, question, image) VALUES (?, ?, ?, ?, ?)",
                                     [(*r[:4], b"") for r in rows])  # fmt: skip
                await tx.executemany("INSERT INTO item_images (job_id, idx, image) VALUES (?, ?, ?)",
                                     [(r[0], r[1], r[4]) for r in rows])  # fmt: skip
                await tx.execute("UPDATE jobs SET updated = ? WHERE id = ?", (time.time(), job_id))  # still arriving

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
            await asyncio.shield(self._store.run(lambda tx: self._delete(tx, job_id)))
            raise

        async def accept(tx: Tx) -> JobView | None:
            await tx.execute("UPDATE jobs SET staging = 0, total = ? WHERE id = ?", (count, job_id))
            return await _view(tx, job_id)

        view = await self._store.run(accept)
        assert view is not None
        self.work_available.set()
        return view

    @staticmethod
    async def _delete(tx: Tx, job_id: str) -> None:
        await tx.execute("DELETE FROM items WHERE job_id = ?", (job_id,))
        await tx.execute("DELETE FROM item_images WHERE job_id = ?", (job_id,))
        await tx.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    async def get(self, job_id: str) -> JobView:
        if not job_id:
            raise MissingField("job_id is required (from SubmitBatch)", field="job_id")
        view = await self._store.run(lambda tx: _view(tx, job_id))
        if view is None:
            message = f"batch job '{shown(job_id)}' does not exist"
            raise JobNotFound(message, field="job_id", metadata={"job_id": job_id})
        return view

    async def cancel(self, job_id: str) -> JobView:
        view = await self.get(job_id)
        if view.state in ENDED:
            raise JobFinished(
                f"batch job '{job_id}' already ended ({view.state.value}); nothing to cancel",
                metadata={"job_id": job_id, "state": view.state.name},
            )

        async def mark(tx: Tx) -> JobView | None:
            # The job's row after its items: taken first it deadlocked with finish_many, 1 s each time.
            await self._lock_items(tx, "job_id = ?", (job_id,))
            await tx.execute(
                "UPDATE items SET status = 'canceled', image = ? WHERE job_id = ? AND status IN ('pending', 'running')",
                (b"", job_id),
            )
            await tx.execute("UPDATE jobs SET canceled = 1, updated = ? WHERE id = ?", (time.time(), job_id))
            await tx.execute("DELETE FROM item_images WHERE job_id = ?", (job_id,))
            await self._store.notify(tx, CHANNEL, "cancel:" + job_id)  # every replica stops its items
            return await _view(tx, job_id)

        view2 = await self._store.run(mark)
        self._stop_local(job_id)
        assert view2 is not None
        return view2

    async def list_jobs(
        self, page_size: int, after: tuple[float, str] | None = None, state: BatchState | None = None
    ) -> tuple[list[JobView], tuple[float, str] | None]:
        """Up to `page_size` jobs, newest first (created, then id, descending), only those in `state` when
        given, starting after the cursor `after`; and the cursor of the next page (None on the last)."""

        async def select(tx: Tx) -> list[JobView]:
            args: tuple[Any, ...]
            sql, args = "SELECT id FROM jobs WHERE staging = 0", ()
            if after is not None:  # keyset paging: jobs submitted meanwhile never shift a later page
                sql, args = sql + " AND (created < ? OR (created = ? AND id < ?))", (after[0], after[0], after[1])
            sql += " ORDER BY created DESC, id DESC"
            if state is None:
                sql, args = sql + " LIMIT ?", (*args, page_size + 1)
            views: list[JobView] = []
            for (job_id,) in (await tx.execute(sql, args)).rows:
                view = await _view(tx, job_id)  # the state is derived from the item counts, so filtered here
                if view is not None and (state is None or view.state is state):
                    views.append(view)
                    if len(views) > page_size:
                        break
            return views

        views = await self._store.run(select)
        if len(views) <= page_size:
            return views, None
        last = views[page_size - 1]
        return views[:page_size], (last.created, last.job_id)

    async def results(self, job_id: str, offset: int, limit: int, finished_only: bool) -> list[ItemResult]:
        await self.get(job_id)

        async def select(tx: Tx) -> list[tuple[Any, ...]]:
            sql = "SELECT idx, item_id, status, result FROM items WHERE job_id = ? AND idx >= ?"
            if finished_only:
                sql += " AND status IN ('succeeded', 'failed', 'canceled')"
            sql += " ORDER BY idx" + (" LIMIT ?" if limit else "")
            args: tuple[Any, ...] = (job_id, offset, limit) if limit else (job_id, offset)
            return (await tx.execute(sql, args)).rows

        rows = await self._store.run(select)
        return [_result_from_row(*row) for row in rows]

    async def recover(self) -> int:
        """At start: items whose owner was a process of this host that is gone go back to pending, and
        uploads such a process (or one silent for STALE_STAGING_S) left staged go; live peers' work
        stays. Owner NULL: rows of a router from before leases. Returns the items put back."""

        async def reset(tx: Tx) -> int:
            now = time.time()
            staged = await tx.execute("SELECT id, owner, updated FROM jobs WHERE staging = 1")
            for job_id, owner, updated in staged.rows:
                if owner is None or dead_here(owner) or updated < now - STALE_STAGING_S:
                    await self._delete(tx, job_id)
            owners = [
                o for (o,) in (await tx.execute("SELECT DISTINCT owner FROM items WHERE status = 'running'")).rows
            ]
            back = 0
            for owner in (o for o in owners if o is None or dead_here(o)):
                put_back = await tx.execute(
                    "UPDATE items SET status = 'pending', owner = NULL, lease_until = NULL"
                    " WHERE status = 'running' AND owner IS NOT DISTINCT FROM ?",
                    (owner,),
                )
                back += put_back.rowcount
            return back

        return await self._store.run(reset)

    async def _lock_items(self, tx: Tx, where: str, args: tuple[Any, ...]) -> None:
        """Row-lock the items matching `where` in (job, index) order on PostgreSQL, the one order every
        multi-row write of items takes (cancel, lease renewal, finish_many), so they never deadlock."""
        if self._store.dialect == "postgresql":
            await tx.execute(f"SELECT 1 FROM items WHERE {where} ORDER BY job_id, idx FOR UPDATE", args)

    async def renew(self) -> int:
        """Extend the lease on every item this process runs; returns how many."""
        until = time.time() + self.lease_s

        async def extend(tx: Tx) -> int:
            await self._lock_items(tx, "owner = ? AND status = 'running'", (self.owner,))
            sql = "UPDATE items SET lease_until = ? WHERE owner = ? AND status = 'running'"
            return (await tx.execute(sql, (until, self.owner))).rowcount

        return await self._store.run(extend)

    async def claim(self) -> Claimed | None:
        """Take an item whose owner's lease ran out, else the oldest pending item of a live job (FIFO
        across jobs), and mark it running under this process's lease."""
        return await self._store.run(self._take)

    async def claim_many(self, limit: int) -> list[Claimed]:
        """`claim`'s item and, of a detect-only job, up to `limit` - 1 more of its items (they run as one
        batch), lapsed leases first as in `claim`, in one transaction; [] when there is none."""

        async def take(tx: Tx) -> list[Claimed]:
            first = await self._take(tx)
            if first is None:
                return []
            if not first[4].detect_only or limit <= 1:
                return [first]
            return [first, *await self._take_more(tx, first[0], first[4], limit - 1)]

        return await self._store.run(take)

    async def _take(self, tx: Tx) -> Claimed | None:
        now = time.time()
        if self._store.dialect == "postgresql":
            return await _claim_postgresql(tx, self.owner, now, self.lease_s)
        for status, lapsed in (("running", " AND i.lease_until < ?"), ("pending", "")):
            args: tuple[Any, ...] = (status, now) if lapsed else (status,)
            key = await _pick_sqlite(tx, lapsed, args)
            if key is not None:
                break
        else:
            return None
        job_id, idx = key
        await tx.execute(
            "UPDATE items SET status = 'running', attempts = attempts + 1, owner = ?, lease_until = ?"
            " WHERE job_id = ? AND idx = ?",
            (self.owner, now + self.lease_s, job_id, idx),
        )
        row = (
            await tx.execute(
                "SELECT COALESCE(m.image, i.image), i.question, j.options FROM items i"
                " JOIN jobs j ON j.id = i.job_id LEFT JOIN item_images m ON m.job_id = i.job_id AND m.idx = i.idx"
                " WHERE i.job_id = ? AND i.idx = ?",
                (job_id, idx),
            )
        ).one()
        assert row is not None
        return job_id, idx, bytes(row[0]), row[1], options_from_dict(json.loads(row[2]))

    async def _take_more(self, tx: Tx, job_id: str, options: BatchOptions, n: int) -> list[Claimed]:
        """Up to `n` more items of `job_id`, lowest index first: those whose lease ran out, then pending
        ones. (Taking lapsed items only one per claim left a dead replica's whole batch waiting behind
        the pending ones.) Two index range scans, no sort of the images."""
        now, taken = time.time(), list[Claimed]()
        skip_locked = " FOR UPDATE OF i SKIP LOCKED" if self._store.dialect == "postgresql" else ""
        for claimable, args in (
            ("i.status = 'running' AND i.lease_until < ?", (now,)),
            ("i.status = 'pending'", ()),
        ):
            if len(taken) == n:
                break
            rows = (
                await tx.execute(
                    "SELECT i.idx, COALESCE(m.image, i.image), i.question FROM items i LEFT JOIN item_images m"
                    f" ON m.job_id = i.job_id AND m.idx = i.idx WHERE i.job_id = ? AND {claimable}"
                    f" ORDER BY i.idx LIMIT ?{skip_locked}",
                    (job_id, *args, n - len(taken)),
                )
            ).rows
            for idx, image, question in rows:
                cur = await tx.execute(  # guarded: another replica's claim may have taken it meanwhile
                    "UPDATE items SET status = 'running', attempts = attempts + 1, owner = ?, lease_until = ?"
                    f" WHERE job_id = ? AND idx = ? AND {claimable.replace('i.', '')}",
                    (self.owner, now + self.lease_s, job_id, idx, *args),
                )
                if cur.rowcount == 1:
                    taken.append((job_id, idx, bytes(image), question, options))
        return taken

    async def finish(self, job_id: str, idx: int, outcome: ItemOutcome) -> bool:
        """Store an item's one result; False when it was canceled meanwhile, or another replica
        reclaimed it after this process's lease ran out (that replica stores its result)."""
        return (await self.finish_many(job_id, [(idx, outcome)]))[0]

    async def finish_many(self, job_id: str, outcomes: list[tuple[int, ItemOutcome]]) -> list[bool]:
        """Store items' results in one transaction; each False as in `finish`."""
        rows = [(idx, *_outcome_to_json(outcome)) for idx, outcome in outcomes]
        order = sorted(range(len(rows)), key=lambda i: rows[i][0])  # rows by index, the order a cancel locks them

        async def write(tx: Tx) -> list[bool]:
            stored = [False] * len(rows)
            for i in order:
                idx, status, result = rows[i]
                cur = await tx.execute(
                    "UPDATE items SET status = ?, result = ?, image = ?, owner = NULL, lease_until = NULL"
                    " WHERE job_id = ? AND idx = ? AND status = 'running' AND owner = ?",
                    (status, result, b"", job_id, idx, self.owner),
                )
                if cur.rowcount == 1:
                    await tx.execute("DELETE FROM item_images WHERE job_id = ? AND idx = ?", (job_id, idx))
                stored[i] = cur.rowcount == 1
            await tx.execute("UPDATE jobs SET updated = ? WHERE id = ?", (time.time(), job_id))
            if any(stored):
                await self._store.notify(tx, CHANNEL, "change:" + job_id)  # watchers on other replicas
            return stored

        stored = await self._store.run(write)
        self.notify(job_id)
        return stored


Claimed = tuple[str, int, bytes, str, BatchOptions]  # job id, index, image, question, options


async def _pick_sqlite(tx: Tx, lapsed: str, args: tuple[Any, ...]) -> tuple[str, int] | None:
    """The item to claim on SQLite (the transaction holds the file's write lock): index lookups, no
    sort. The oldest live job with such items, then its lowest index. (One query ordering the joined
    rows sorted every pending item's image through a temp b-tree: 8 ms per claim at 1,000 items.)"""
    job = (
        await tx.execute(
            "SELECT j.id FROM jobs j WHERE j.staging = 0 AND j.canceled = 0 AND EXISTS"
            f" (SELECT 1 FROM items i WHERE i.status = ? AND i.job_id = j.id{lapsed}) ORDER BY j.created LIMIT 1",
            args,
        )
    ).one()
    if job is None:
        return None
    sql = f"SELECT i.idx FROM items i WHERE i.status = ? AND i.job_id = ?{lapsed} ORDER BY i.idx LIMIT 1"
    row = (await tx.execute(sql, (args[0], job[0], *args[1:]))).one()
    return None if row is None else (str(job[0]), int(row[0]))


async def _claim_postgresql(tx: Tx, owner: str, now: float, lease_s: float) -> Claimed | None:
    """The claim on PostgreSQL as one statement (one round trip): the item row-locked, skipping rows
    other replicas are claiming right now (FOR UPDATE SKIP LOCKED), so concurrent claims never wait
    on each other or take one item twice; lapsed leases first, then the oldest live job's lowest index."""
    row = (
        await tx.execute(
            "WITH pick AS (SELECT i.job_id, i.idx FROM items i JOIN jobs j ON j.id = i.job_id"
            " WHERE j.staging = 0 AND j.canceled = 0"
            " AND (i.status = 'pending' OR (i.status = 'running' AND i.lease_until < ?))"
            " ORDER BY i.status = 'pending', j.created, i.job_id, i.idx LIMIT 1 FOR UPDATE OF i SKIP LOCKED)"
            " UPDATE items u SET status = 'running', attempts = u.attempts + 1, owner = ?, lease_until = ?"
            " FROM pick, jobs j WHERE u.job_id = pick.job_id AND u.idx = pick.idx AND j.id = u.job_id"
            " RETURNING u.job_id, u.idx, COALESCE((SELECT m.image FROM item_images m WHERE m.job_id = u.job_id"
            " AND m.idx = u.idx), u.image), u.question, j.options",
            (now, owner, now + lease_s),
        )
    ).one()
    if row is None:
        return None
    return str(row[0]), int(row[1]), bytes(row[2]), str(row[3]), options_from_dict(json.loads(row[4]))


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
        self._follower: asyncio.Task[None] | None = None
        self._draining = False

    async def start(self) -> None:
        resumed = await self._jobs.recover()
        if resumed:
            log.info("resuming %d bulk items left running by a previous router", resumed)
        self._tasks = [asyncio.create_task(self._work(), name=f"batch-worker-{i}") for i in range(self._workers)]
        self._keeper = asyncio.create_task(self._keep_leases(), name="batch-leases")
        self._follower = asyncio.create_task(self._jobs.follow_peers(self._poll_s), name="batch-peers")

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
            except StoreUnavailable as exc:  # PostgreSQL lost: claim again once it is back
                log.warning("bulk worker: %s", exc)
                await asyncio.sleep(max(self._poll_s, 1.0))
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
        job_id, first, _, _, options = claimed[0]
        span = {"roadwork.job_id": job_id, "roadwork.item_index": first, "roadwork.items": len(claimed)}
        with tracing.stage("bulk item", span):
            if options.detect_only:  # the items go to the detectors as whole batches
                work = self._detect_items([c[2] for c in claimed])
            else:
                work = self._one(claimed[0][2], claimed[0][3], options)
            outcomes = await self._supervised(job_id, asyncio.ensure_future(work), options, len(claimed))
            if outcomes is None:
                return  # CancelBatch canceled the items; their rows already say so
            # Guarded: an item CancelBatch ended meanwhile keeps its CANCELED row.
            failed = sum(bool(o.error_code) for o in outcomes)
            with tracing.stage("persist result", {"roadwork.items.failed": failed}):
                stored = await self._store_results(job_id, [(c[1], o) for c, o in zip(claimed, outcomes, strict=True)])
            for outcome, ok in zip(outcomes, stored, strict=True):
                if ok:
                    self._pipeline.metrics.batch_items.labels("failed" if outcome.error_code else "succeeded").inc()

    async def _detect_items(self, images: list[bytes]) -> list[ItemOutcome]:
        """Detect-only items, again every poll_s while the shared detection process is restarting (the
        item timeout still bounds them): a restart costs the job time, not results."""
        while True:
            try:
                return await self._pipeline.detect_items(images)
            except DetectionUnavailable as exc:
                log.warning("bulk items: %s; again in %.1f s", exc, max(self._poll_s, 0.5))
                await asyncio.sleep(max(self._poll_s, 0.5))

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

    async def _store_results(self, job_id: str, outcomes: list[tuple[int, ItemOutcome]]) -> list[bool]:
        """`finish_many`, again every poll_s while the store is unreachable: the results are kept until
        they land (or a lease lapsed meanwhile and another replica runs that item: then it is refused)."""
        while True:
            try:
                return await self._jobs.finish_many(job_id, outcomes)
            except StoreUnavailable as exc:  # PostgreSQL lost
                log.warning("bulk items of %s: storing %d results failed (%s); again in %.1f s",
                            job_id, len(outcomes), exc, self._poll_s)  # fmt: skip
                await asyncio.sleep(self._poll_s)

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
        keepers = [t for t in (self._keeper, self._follower) if t is not None]
        for t in [*self._tasks, *keepers]:
            t.cancel()
        await asyncio.gather(*self._tasks, *keepers, return_exceptions=True)
        self._tasks, self._keeper, self._follower = [], None, None
