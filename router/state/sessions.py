"""Durable sessions: conversation history, the image and its detections, an idle TTL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from detectors.base import Detection
from router.errors import RouterError, SessionClosed, SessionExpired, SessionNotFound, shown
from router.flow.images import DecodedImage
from router.state.serialize import dumps_detection, loads_detection
from router.state.store import Store, Tx

# Closed and expired sessions are kept this long (to answer FAILED_PRECONDITION, not NOT_FOUND).
TOMBSTONE_S = 86400.0
TURN_HOLD_S = 10.0  # a follow-up's hold on its session, renewed while it runs: a crashed replica's lapses


@dataclass
class Session:
    """A conversation about one image."""

    id: str
    created: float
    last_used: float
    ttl_s: int
    image: bytes = b""
    image_mime: str = ""
    image_sha256: str = ""
    detection: Detection | None = None
    history: list[tuple[str, str]] = field(default_factory=list)

    @property
    def expires(self) -> float:
        return self.last_used + self.ttl_s

    def set_image(self, image: DecodedImage, detection: Detection | None) -> None:
        """Make `image` (and its detection) the one later turns are about."""
        self.image, self.image_mime, self.image_sha256 = image.data, image.mime, image.sha256
        self.detection = detection


def _row_to_session(row: tuple[Any, ...]) -> Session:
    (sid, created, last_used, ttl_s, _closed, image, mime, sha, det, history) = row
    return Session(
        id=str(sid),
        created=float(created),
        last_used=float(last_used),
        ttl_s=int(ttl_s),
        image=bytes(image or b""),
        image_mime=str(mime or ""),
        image_sha256=str(sha or ""),
        detection=loads_detection(str(det)) if det else None,
        history=[(str(q), str(a)) for q, a in json.loads(str(history))],
    )


class SessionStore:
    """Creates, loads, updates and closes sessions in the durable store."""

    def __init__(self, store: Store, *, default_ttl_s: int, max_ttl_s: int, turn_hold_s: float = TURN_HOLD_S) -> None:
        self._store = store
        self._default_ttl = default_ttl_s
        self._max_ttl = max_ttl_s
        self._hold_s = turn_hold_s

    @contextlib.asynccontextmanager
    async def turn(self, session_id: str) -> AsyncIterator[None]:
        """Hold the session's turn across replicas: a row lock kept as a lease on the session row (the
        same statements on both backends), so a follow-up arriving on another replica at the same
        time waits until this one's turn is recorded. No wait for a session that does not exist."""
        token = secrets.token_hex(8)

        async def take(tx: Tx) -> bool:
            now = time.time()
            taken = await tx.execute(
                "UPDATE sessions SET turn_owner = ?, turn_until = ? WHERE id = ?"
                " AND (turn_owner IS NULL OR turn_until < ?)",
                (token, now + self._hold_s, session_id, now),
            )
            return (
                taken.rowcount == 1 or not (await tx.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,))).rows
            )

        delay = 0.01
        while not await self._store.run(take):  # the caller's deadline bounds the wait
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        keeper = asyncio.create_task(self._keep_turn(session_id, token))
        try:
            yield
        finally:
            keeper.cancel()
            sql = "UPDATE sessions SET turn_owner = NULL, turn_until = NULL WHERE id = ? AND turn_owner = ?"
            await asyncio.shield(self._store.run(lambda tx: tx.execute(sql, (session_id, token))))

    async def _keep_turn(self, session_id: str, token: str) -> None:
        sql = "UPDATE sessions SET turn_until = ? WHERE id = ? AND turn_owner = ?"
        while True:
            await asyncio.sleep(self._hold_s / 3)
            with contextlib.suppress(RouterError):  # the store is unreachable: the next round tries again
                await self._store.run(lambda tx: tx.execute(sql, (time.time() + self._hold_s, session_id, token)))

    async def create(
        self, *, ttl_s: int = 0, image: DecodedImage | None = None, detection: Detection | None = None
    ) -> Session:
        now = time.time()
        ttl = min(ttl_s or self._default_ttl, self._max_ttl)
        session = Session(id="s_" + secrets.token_urlsafe(16), created=now, last_used=now, ttl_s=ttl)
        if image is not None:
            session.set_image(image, detection)

        async def insert(tx: Tx) -> None:
            await tx.execute(
                "INSERT INTO sessions (id, created, last_used, ttl_s, image, image_mime, image_sha256, detection)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.id,
                    now,
                    now,
                    ttl,
                    session.image or None,
                    session.image_mime or None,
                    session.image_sha256 or None,
                    dumps_detection(detection) if detection else None,
                ),
            )

        await self._store.run(insert)
        return session

    async def get(self, session_id: str) -> Session:
        """The live session, or SessionNotFound / SessionClosed / SessionExpired."""

        async def select(tx: Tx) -> tuple[Any, ...] | None:
            return (
                await tx.execute(
                    "SELECT id, created, last_used, ttl_s, closed, image, image_mime, image_sha256, detection, history"
                    " FROM sessions WHERE id = ?",
                    (session_id,),
                )
            ).one()

        row = await self._store.run(select)
        meta = {"session_id": session_id}
        if row is None:
            raise SessionNotFound(
                f"session '{shown(session_id)}' does not exist; open one with CreateSession or Ask(open_session)",
                field="session_id",
                metadata=meta,
            )
        if row[4]:
            raise SessionClosed(f"session '{session_id}' was closed; open a new one", metadata=meta)
        session = _row_to_session(row)
        if session.expires < time.time():
            raise SessionExpired(
                f"session '{session_id}' expired after {session.ttl_s} s idle; open a new one", metadata=meta
            )
        return session

    async def record_turn(
        self, session: Session, question: str, answer: str, *, image: DecodedImage | None, detection: Detection | None
    ) -> None:
        """Append a turn (and a new image, when the turn brought one); pushes the expiry back."""
        session.history.append((question, answer))
        session.last_used = time.time()
        if image is not None:
            session.set_image(image, detection)

        async def update(tx: Tx) -> None:
            await tx.execute(
                "UPDATE sessions SET last_used = ?, history = ?, image = ?, image_mime = ?, image_sha256 = ?,"
                " detection = ? WHERE id = ?",
                (
                    session.last_used,
                    json.dumps(session.history),
                    session.image or None,
                    session.image_mime or None,
                    session.image_sha256 or None,
                    dumps_detection(session.detection) if session.detection else None,
                    session.id,
                ),
            )

        await self._store.run(update)

    async def close(self, session_id: str) -> None:
        """Close a live session; SessionNotFound for unknown ids, SessionClosed / SessionExpired otherwise."""
        await self.get(session_id)

        async def mark(tx: Tx) -> None:
            await tx.execute("UPDATE sessions SET closed = 1, history = '[]', image = NULL WHERE id = ?", (session_id,))

        await self._store.run(mark)

    async def purge(self) -> int:
        """Forget sessions closed or expired more than a day ago; returns how many."""
        cutoff = time.time() - TOMBSTONE_S

        async def delete(tx: Tx) -> int:
            cur = await tx.execute(
                "DELETE FROM sessions WHERE last_used + ttl_s < ? OR (closed = 1 AND last_used < ?)", (cutoff, cutoff)
            )
            return cur.rowcount

        return await self._store.run(delete)
