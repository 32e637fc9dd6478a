"""The durable store behind one interface: SQLite (embedded default) or PostgreSQL (several hosts).

Sessions and jobs write their statements once, with `?` placeholders, as an async transaction
function `fn(tx)`; a backend runs it as one transaction. `Store.dialect` picks the few statements
that differ (the PostgreSQL claim's FOR UPDATE SKIP LOCKED, the session row lock).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from router.state.migrations import migrate_sqlite

T = TypeVar("T")
Row = tuple[Any, ...]


@dataclass
class Result:
    """One statement's rows (empty for writes) and the rows it changed."""

    rows: list[Row]
    rowcount: int

    def one(self) -> Row | None:
        return self.rows[0] if self.rows else None


class Tx(Protocol):
    """A transaction: statements with `?` placeholders."""

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> Result: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


TxFn = Callable[[Tx], Coroutine[Any, Any, T]]


class Store(Protocol):
    """What sessions and jobs need from a backend."""

    dialect: str  # "sqlite" or "postgresql"

    async def open(self) -> None:
        """Connect and bring the schema up to date (ConfigError naming the key when it cannot)."""

    async def run(self, fn: TxFn[T]) -> T:
        """`fn(tx)` as one transaction: all its statements land together, or none."""

    async def listen(self, channel: str, on_message: Callable[[str], None]) -> bool:
        """Call `on_message(payload)` for every `notify` on `channel` by any replica; False when
        this backend cannot (callers poll instead)."""

    async def notify(self, tx: Tx, channel: str, payload: str) -> None:
        """Tell every replica's listeners, when `tx` commits (nothing where `listen` is False)."""

    async def close(self) -> None: ...


class _SqliteTx:
    """Runs each statement at once on the store thread's connection (it never suspends)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> Result:
        cur = self._conn.execute(sql, args)
        rows = cur.fetchall() if cur.description else []
        return Result(rows, cur.rowcount)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


def _drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a transaction coroutine to its end on this thread: SQLite statements never suspend, so
    one send finishes it (one thread hop per transaction, not one per statement)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a store transaction awaited something other than its statements")


class SqliteStore:
    """One SQLite file (WAL), every statement serialised on one worker thread."""

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        migrate_sqlite(conn)
        self._conn = conn

    async def open(self) -> None:
        if self._conn is None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._open)

    def _transaction(self, fn: TxFn[T]) -> T:
        """IMMEDIATE takes the write lock up front, so routers sharing the file (several processes)
        serialise their claims instead of failing on a stale read snapshot."""
        conn = self._conn
        assert conn is not None, "SqliteStore.open() first"
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = _drive(fn(_SqliteTx(conn)))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def run(self, fn: TxFn[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._transaction, fn)

    async def listen(self, channel: str, on_message: Callable[[str], None]) -> bool:
        return False  # one file has no messages: replicas poll it

    async def notify(self, tx: Tx, channel: str, payload: str) -> None:
        return None

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)


def open_store(url: str, *, path: str = ":memory:", pool_max: int = 8, connect_timeout_s: float = 5.0) -> Store:
    """The backend for `storage.url`: PostgreSQL for postgresql:// URLs, else SQLite at `path`."""
    if url.startswith(("postgresql://", "postgres://")):
        from router.state.postgres import PostgresStore  # psycopg loads only where it is used

        return PostgresStore(url, pool_max=pool_max, connect_timeout_s=connect_timeout_s)
    return SqliteStore(path)
