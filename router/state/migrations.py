"""Versioned schema migrations for both backends: `schema_migrations` records each one applied.

A small runner rather than a migration tool: Alembic needs SQLAlchemy's engines (we use sqlite3 and
psycopg's async pool directly), yoyo-migrations is synchronous over DB-API drivers, and neither
knows the stores written before versioning (no version table, columns added by hand since 0.1),
which version 1 adopts. Each migration runs in one transaction (DDL is transactional on both), under
the write lock (SQLite) or an advisory lock (PostgreSQL), so replicas starting together apply it once.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

_TABLES = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    created {real} NOT NULL,
    last_used {real} NOT NULL,
    ttl_s INTEGER NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0,
    image {blob},
    image_mime TEXT,
    image_sha256 TEXT,
    detection TEXT,
    history TEXT NOT NULL DEFAULT '[]'
)
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created {real} NOT NULL,
    updated {real} NOT NULL,
    canceled INTEGER NOT NULL DEFAULT 0,
    staging INTEGER NOT NULL DEFAULT 1,
    display_name TEXT NOT NULL DEFAULT '',
    options TEXT NOT NULL,
    total INTEGER NOT NULL,
    owner TEXT
)
CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    item_id TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL DEFAULT '',
    image {blob} NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    result TEXT,
    seq INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until {real},
    PRIMARY KEY (job_id, idx)
){rowid}
CREATE INDEX IF NOT EXISTS items_pending ON items (status, job_id, idx)
CREATE TABLE IF NOT EXISTS item_images (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    image {blob} NOT NULL,
    PRIMARY KEY (job_id, idx)
)
"""
# (item_images: item images live apart from the item rows, so a status change rewrites a few bytes,
# not the image's overflow pages; items.image stays empty, stores from older routers may still have it.)


def _statements(text: str, **types: str) -> tuple[str, ...]:
    """The CREATE statements of `text`, with the backend's column types filled in."""
    body = text.format(**types).strip().removeprefix("CREATE ")
    return tuple("CREATE " + s.strip() for s in body.split("\nCREATE "))


@dataclass(frozen=True)
class Migration:
    """One schema version: its statements on each backend."""

    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]


_LEASE_INDEX = "CREATE INDEX IF NOT EXISTS items_running ON items (owner, lease_until) WHERE status = 'running'"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "baseline: sessions, jobs, items (owner, lease_until, attempts), item_images, as routers 0.2 wrote them",
        _statements(_TABLES, real="REAL", blob="BLOB", rowid=" WITHOUT ROWID"),
        _statements(_TABLES, real="DOUBLE PRECISION", blob="BYTEA", rowid=""),
    ),
    Migration(
        2,
        "index the running items' leases (renewal by owner, reclaim of lapsed leases)",
        (_LEASE_INDEX,),
        (_LEASE_INDEX,),
    ),
    Migration(
        3,
        "sessions.turn_owner, turn_until: the follow-up holding a session's turn, across replicas",
        ("ALTER TABLE sessions ADD COLUMN turn_owner TEXT", "ALTER TABLE sessions ADD COLUMN turn_until REAL"),
        (
            "ALTER TABLE sessions ADD COLUMN turn_owner TEXT",
            "ALTER TABLE sessions ADD COLUMN turn_until DOUBLE PRECISION",
        ),
    ),
)
LATEST = MIGRATIONS[-1].version

VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied {real} NOT NULL,"
    " description TEXT NOT NULL)"
)
ADVISORY_KEY = 0x726F6164  # "road": PostgreSQL advisory lock held while migrating


def _adopt_unversioned_sqlite(conn: sqlite3.Connection) -> None:
    """Columns that stores written before 0.2 (before versioning) lack; version 1 has them."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(items)")}
    if not columns:
        return  # a new store: version 1 creates the tables
    if "attempts" not in columns:  # times an item was claimed
        conn.execute("ALTER TABLE items ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
    if "owner" not in columns:  # the router process running the item, and until when (leases.py)
        conn.execute("ALTER TABLE items ADD COLUMN owner TEXT")
        conn.execute("ALTER TABLE items ADD COLUMN lease_until REAL")
    if "owner" not in {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}:  # who is staging it
        conn.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")


def migrate_sqlite(conn: sqlite3.Connection, target: int = LATEST) -> int:
    """Apply the migrations after the store's version up to `target`; returns the version reached."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(VERSION_TABLE.format(real="REAL"))
        current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
        for m in MIGRATIONS:
            if current < m.version <= target:
                if m.version == 1:
                    _adopt_unversioned_sqlite(conn)
                for statement in m.sqlite:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied, description) VALUES (?, ?, ?)",
                    (m.version, time.time(), m.description),
                )
                current = m.version
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return int(current)


async def migrate_postgresql(conn: Any, target: int = LATEST) -> int:
    """The same on a psycopg AsyncConnection (autocommit off), under an advisory lock."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_KEY,))
        await conn.execute(VERSION_TABLE.format(real="DOUBLE PRECISION"))
        cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        row = await cur.fetchone()
        current = int(row[0])
        for m in MIGRATIONS:
            if current < m.version <= target:
                for statement in m.postgresql:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, applied, description) VALUES (%s, %s, %s)",
                    (m.version, time.time(), m.description),
                )
                current = m.version
    return current
