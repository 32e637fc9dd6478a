"""The store backends: versioned migrations on both (including stores written before versioning),
and start-up errors that name the config key."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import psycopg
import pytest

from router.config import load_config
from router.errors import ConfigError, StoreUnavailable
from router.state.jobs import ItemOutcome, JobStore
from router.state.migrations import MIGRATIONS, migrate_postgresql, migrate_sqlite
from router.state.sessions import SessionStore
from router.state.store import Tx, open_store
from router.types import BatchOptions
from tests.conftest import free_port
from tests.pg import PostgresServer
from tests.router.state.test_jobs import _items, opened, rows

# The schema routers 0.2 wrote (router/state/store.py before versioning), frozen here: a store it
# wrote must open, migrate and go on.
SCHEMA_0_2 = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, created REAL NOT NULL, last_used REAL NOT NULL, ttl_s INTEGER NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0, image BLOB, image_mime TEXT, image_sha256 TEXT, detection TEXT,
    history TEXT NOT NULL DEFAULT '[]');
CREATE TABLE jobs (id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL,
    canceled INTEGER NOT NULL DEFAULT 0, staging INTEGER NOT NULL DEFAULT 1, display_name TEXT NOT NULL DEFAULT '',
    options TEXT NOT NULL, total INTEGER NOT NULL, owner TEXT);
CREATE TABLE items (job_id TEXT NOT NULL, idx INTEGER NOT NULL, item_id TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL DEFAULT '', image BLOB NOT NULL, status TEXT NOT NULL DEFAULT 'pending', result TEXT,
    seq INTEGER, attempts INTEGER NOT NULL DEFAULT 0, owner TEXT, lease_until REAL,
    PRIMARY KEY (job_id, idx)) WITHOUT ROWID;
CREATE INDEX items_pending ON items (status, job_id, idx);
CREATE TABLE item_images (job_id TEXT NOT NULL, idx INTEGER NOT NULL, image BLOB NOT NULL, PRIMARY KEY (job_id, idx));
INSERT INTO sessions (id, created, last_used, ttl_s, history) VALUES ('s_old', 1.0, 4e9, 60, '[["q","a"]]');
INSERT INTO jobs (id, created, updated, staging, options, total) VALUES ('job_old', 1.0, 1.0, 0,
    '{"detect_only": true}', 2);
INSERT INTO items (job_id, idx, image, status, owner, lease_until) VALUES ('job_old', 0, x'', 'running',
    'elsewhere:1:ab', 1.0);
INSERT INTO items (job_id, idx, image) VALUES ('job_old', 1, x'');
INSERT INTO item_images VALUES ('job_old', 0, x'00'), ('job_old', 1, x'01');
"""


async def test_a_store_written_by_the_0_2_schema_is_migrated_and_goes_on(tmp_path: Path) -> None:
    path = str(tmp_path / "old.sqlite3")
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(SCHEMA_0_2)
    store = await opened(path)
    assert await rows(store, "SELECT version FROM schema_migrations ORDER BY version") == [
        (m.version,) for m in MIGRATIONS
    ]
    assert await rows(store, "SELECT name FROM sqlite_master WHERE name = 'items_running'") == [("items_running",)]
    sessions = SessionStore(store, default_ttl_s=60, max_ttl_s=60)
    assert (await sessions.get("s_old")).history == [("q", "a")]
    jobs = JobStore(store)
    first, second = await jobs.claim(), await jobs.claim()  # the lapsed lease first, then the pending item
    assert first is not None and first[:3] == ("job_old", 0, b"\x00")
    assert second is not None and second[:3] == ("job_old", 1, b"\x01")
    await store.close()


async def test_a_store_from_before_leases_gains_the_columns_and_resumes_its_items(tmp_path: Path) -> None:
    path = str(tmp_path / "older.sqlite3")
    before_leases = SCHEMA_0_2.replace(", owner TEXT, lease_until REAL", "").replace(
        ", total INTEGER NOT NULL, owner TEXT", ", total INTEGER NOT NULL"
    )
    before_leases = before_leases.replace(", status, owner, lease_until)", ", status)").replace(
        "'running',\n    'elsewhere:1:ab', 1.0)", "'running')"
    )
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(before_leases)
        assert "owner" not in {r[1] for r in db.execute("PRAGMA table_info(items)")}
    store = await opened(path)
    jobs = JobStore(store)
    assert await jobs.recover() == 1  # owner NULL: left by a router from before leases
    claimed = await jobs.claim()
    assert claimed is not None and claimed[:2] == ("job_old", 0)
    await store.close()


async def test_each_migration_applies_once_from_any_version(store_url: str) -> None:
    """Version 1 written, rows in it; opening migrates to the latest, keeps the rows, and a second
    open (or two replicas opening at once) applies nothing again."""
    if store_url.startswith("postgresql://"):
        async with await psycopg.AsyncConnection.connect(store_url) as conn:
            assert await migrate_postgresql(conn, target=1) == 1
    else:
        with contextlib.closing(sqlite3.connect(store_url, isolation_level=None)) as db:
            assert migrate_sqlite(db, target=1) == 1
    first = await opened(store_url)
    view = await JobStore(first).submit(BatchOptions(detect_only=True), _items(2), max_items=5, max_image_bytes=5000)
    await first.close()
    again = [open_store(store_url, path=store_url) for _ in range(2)]
    await asyncio.gather(*(s.open() for s in again))
    assert await rows(again[0], "SELECT version FROM schema_migrations ORDER BY version") == [
        (m.version,) for m in MIGRATIONS
    ]
    assert (await JobStore(again[1]).get(view.job_id)).total == 2
    for s in again:
        await s.close()


async def test_postgresql_unreachable_at_start_names_storage_url() -> None:
    url = f"postgresql://roadwork:secret@127.0.0.1:{free_port()}/roadwork"
    store = open_store(url, connect_timeout_s=1)
    with pytest.raises(ConfigError) as caught:
        await store.open()
    message = str(caught.value)
    assert message.startswith("storage.url: cannot connect to PostgreSQL at postgresql://roadwork@127.0.0.1:")
    assert "secret" not in message and "\n" not in message


def test_a_storage_url_that_is_not_postgresql_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"storage\.url: .*'mysql://x' is not a postgresql:// URL"):
        load_config(env={"ROADWORK__STORAGE__URL": "mysql://x"})


async def test_postgresql_lost_mid_run_fails_unavailable_keeps_the_items_and_recovers() -> None:
    """A server of its own (the shared one stays up): stopped with a claim held, then started again."""
    server = PostgresServer(free_port())
    await asyncio.to_thread(server.start)
    try:
        store = open_store(await asyncio.to_thread(server.database), connect_timeout_s=1)
        await store.open()
        jobs = JobStore(store)
        view = await jobs.submit(BatchOptions(detect_only=True), _items(3), max_items=5, max_image_bytes=5000)
        claimed = await jobs.claim()
        assert claimed is not None
        await asyncio.to_thread(server.stop)
        with pytest.raises(StoreUnavailable) as caught:
            await jobs.get(view.job_id)
        err = caught.value
        assert err.code == grpc.StatusCode.UNAVAILABLE and err.reason == "STORE_UNAVAILABLE"
        assert (
            err.message.startswith("the session and job store (PostgreSQL at postgresql://")
            and "storage.url" in err.message
        )
        assert err.retry_after_s == 1.0
        await asyncio.to_thread(server.launch)
        # The same store goes on (its pool replaces the dropped connections); the items are all there.
        t0 = time.monotonic()
        while True:
            try:
                assert (await jobs.get(view.job_id)).pending == 3
                break
            except StoreUnavailable:
                assert time.monotonic() - t0 < 10, "not recovered 10 s after PostgreSQL returned"
        assert await jobs.finish(view.job_id, claimed[1], ItemOutcome(error_code="X", error_message="after"))
        assert [r.error_message for r in await jobs.results(view.job_id, 0, 0, finished_only=True)] == ["after"]
        await store.close()
    finally:
        await asyncio.to_thread(server.remove)


async def test_postgresql_transactions_rolled_back_by_a_deadlock_run_again(postgres: PostgresServer) -> None:
    """Two transactions that lock two rows in opposite orders deadlock; PostgreSQL aborts one, and the
    store runs it again, so both succeed (a CancelBatch against the replicas' claims did this)."""
    store = open_store(await asyncio.to_thread(postgres.database))
    await store.open()
    try:
        await store.run(lambda tx: tx.execute("CREATE TABLE pair (k INT PRIMARY KEY, v INT)"))
        await store.run(lambda tx: tx.execute("INSERT INTO pair VALUES (1, 0), (2, 0)"))
        both = asyncio.Barrier(2)
        tries: list[int] = []

        def crossing(first: int, second: int) -> Callable[[Tx], Awaitable[None]]:
            async def fn(tx: Tx) -> None:
                tries.append(first)
                await tx.execute("UPDATE pair SET v = v + 1 WHERE k = ?", (first,))
                if len(tries) <= 2:  # the first tries meet, each holding one row
                    await both.wait()
                await tx.execute("UPDATE pair SET v = v + 1 WHERE k = ?", (second,))

            return fn

        await asyncio.wait_for(asyncio.gather(store.run(crossing(1, 2)), store.run(crossing(2, 1))), 30)
        assert len(tries) == 3, "one of the two was rolled back and run again"
        values = await store.run(lambda tx: tx.execute("SELECT v FROM pair ORDER BY k"))
        assert [v for (v,) in values.rows] == [2, 2], "each transaction's two updates stored once"
    finally:
        await store.close()
