"""The PostgreSQL backend (`storage.url = "postgresql://..."`): psycopg 3's async driver, a pool."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from router.errors import ConfigError, StoreUnavailable
from router.state.migrations import migrate_postgresql
from router.state.store import Result, Tx, TxFn

T = TypeVar("T")
log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """A statement written with `?` placeholders in psycopg's `%s` style."""
    return sql.replace("%", "%%").replace("?", "%s")


def shown_url(url: str) -> str:
    """`url` without its password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"{parts.scheme}://{parts.username + '@' if parts.username else ''}{host}:{parts.port or 5432}{parts.path}"


def _rolled_back(exc: BaseException) -> bool:
    """PostgreSQL aborted the transaction to break a deadlock (40P01) or a serialization conflict (40001)."""
    return isinstance(exc, psycopg.Error) and exc.sqlstate in ("40P01", "40001")


class _PgTx:
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> Result:
        cur = await self._conn.execute(_pg(sql), args)
        rows = await cur.fetchall() if cur.description else []
        return Result(rows, cur.rowcount)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._conn.cursor() as cur:
            await cur.executemany(_pg(sql), rows)


class PostgresStore:
    """Several router hosts share one database; statements run on pooled connections."""

    dialect = "postgresql"

    def __init__(self, url: str, *, pool_max: int = 8, connect_timeout_s: float = 5.0) -> None:
        self.url = url
        self._timeout = connect_timeout_s
        # The router recovers when PostgreSQL returns, without a restart: after a failed call the pool
        # drops the connections the database closed (`check`, on failure only: one empty query per
        # checkout cost a round trip on every transaction), and a reconnection that backed off for
        # connect_timeout_s gives up, so the next call starts a fresh one at once (psycopg_pool's
        # backoff doubles from 1 s: after a long outage it would wait about as long).
        self._pool = AsyncConnectionPool(
            url, min_size=1, max_size=pool_max, open=False, timeout=connect_timeout_s, name="roadwork-store",
            reconnect_timeout=connect_timeout_s,
        )  # fmt: skip
        self._listeners: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        """Connect (a ConfigError naming storage.url when PostgreSQL cannot be reached) and migrate."""
        try:
            conn = await psycopg.AsyncConnection.connect(self.url, connect_timeout=max(1, int(self._timeout)))
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__  # one line
            raise ConfigError(
                f"storage.url: cannot connect to PostgreSQL at {shown_url(self.url)}: {reason}; start it, or fix the"
                " URL (leave storage.url empty for the embedded SQLite store)"
            ) from exc
        async with conn:
            await migrate_postgresql(conn)
        await self._pool.open(wait=True, timeout=self._timeout)

    async def run(self, fn: TxFn[T]) -> T:
        """`fn` in one transaction; run again (up to 5 times, a few ms apart) when PostgreSQL rolled it
        back to break a deadlock or a serialization conflict, as its manual advises: a CancelBatch's
        update of a job's items and the replicas' claims and results lock rows in different orders."""
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_rolled_back),
                stop=stop_after_attempt(5),
                wait=wait_random_exponential(multiplier=0.005, max=0.1),
                reraise=True,
            ):
                with attempt:
                    async with self._pool.connection() as conn, conn.transaction():
                        return await fn(_PgTx(conn))
            raise AssertionError("unreachable: tenacity returns or re-raises")  # pragma: no cover
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:  # lost, or closed under us
            with contextlib.suppress(Exception):
                await self._pool.check()  # drop the connections the database closed
            where = shown_url(self.url)
            raise StoreUnavailable(
                f"the session and job store (PostgreSQL at {where}, storage.url) cannot be reached:"
                f" {' '.join(str(exc).split()) or type(exc).__name__}; nothing stored is lost, retry shortly",
                retry_after_s=1.0,
                metadata={"store": where},
            ) from exc

    async def listen(self, channel: str, on_message: Callable[[str], None]) -> bool:
        self._listeners.append(asyncio.create_task(self._listen(channel, on_message), name=f"listen-{channel}"))
        return True

    async def _listen(self, channel: str, on_message: Callable[[str], None]) -> None:
        """LISTEN on a connection of its own, reconnecting after the database was lost."""
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
                async with conn:
                    await conn.execute(f'LISTEN "{channel}"')
                    on_message("")  # (re)connected: messages may have been missed, re-read
                    async for note in conn.notifies():
                        on_message(note.payload)
            except psycopg.Error as exc:
                log.warning("store: listening on %s failed (%s); again in 1 s", channel, exc)
                await asyncio.sleep(1.0)

    async def notify(self, tx: Tx, channel: str, payload: str) -> None:
        await tx.execute("SELECT pg_notify(?, ?)", (channel, payload))

    async def close(self) -> None:
        for task in self._listeners:
            task.cancel()
        for task in self._listeners:
            with contextlib.suppress(BaseException):
                await task
        await self._pool.close()
