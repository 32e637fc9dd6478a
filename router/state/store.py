"""The embedded durable store: one SQLite file (WAL), used from one worker thread."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    last_used REAL NOT NULL,
    ttl_s INTEGER NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0,
    image BLOB,
    image_mime TEXT,
    image_sha256 TEXT,
    detection TEXT,
    history TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    canceled INTEGER NOT NULL DEFAULT 0,
    staging INTEGER NOT NULL DEFAULT 1,
    display_name TEXT NOT NULL DEFAULT '',
    options TEXT NOT NULL,
    total INTEGER NOT NULL,
    owner TEXT
);
CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    item_id TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL DEFAULT '',
    image BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    result TEXT,
    seq INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until REAL,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_pending ON items (status, job_id, idx);
-- Item images live apart from the item rows: a status change then rewrites a few bytes, not the
-- image's overflow pages (items.image stays empty; stores from older routers may still have it).
CREATE TABLE IF NOT EXISTS item_images (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    image BLOB NOT NULL,
    PRIMARY KEY (job_id, idx)
);
"""


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a store created by an older router up to SCHEMA (columns added since)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(items)")}
    if "attempts" not in columns:  # times an item was claimed: > 1 only for items a crash interrupted
        conn.execute("ALTER TABLE items ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
    if "owner" not in columns:  # the router process running the item, and until when (router/state/leases.py)
        conn.execute("ALTER TABLE items ADD COLUMN owner TEXT")
        conn.execute("ALTER TABLE items ADD COLUMN lease_until REAL")
    if "owner" not in {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}:  # who is staging it
        conn.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")


class Store:
    """Serialises every statement on one thread; callers await `run(fn)` with a connection-taking fn."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._conn = self._executor.submit(self._open).result()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(SCHEMA)
        _migrate(conn)
        return conn

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(conn)` as one transaction: all its statements land together (one commit), or none.
        IMMEDIATE takes the write lock up front, so routers sharing the file (several processes)
        serialise their claims instead of failing on a stale read snapshot."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(self._conn)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        return result

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the store thread, as one transaction."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._transaction, fn)

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the store thread from synchronous code, as one transaction."""
        return self._executor.submit(self._transaction, fn).result()

    def close(self) -> None:
        self._executor.submit(self._conn.close).result()
        self._executor.shutdown(wait=True)
