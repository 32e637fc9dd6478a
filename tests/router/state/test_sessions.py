"""Sessions shared by replicas on both backends: a session opened on one goes on on another, and
two follow-ups arriving at once on different replicas take turns."""

from __future__ import annotations

import asyncio

from router.state.sessions import SessionStore
from tests.router.state.test_jobs import opened


def _sessions(store: object, hold_s: float = 10.0) -> SessionStore:
    return SessionStore(store, default_ttl_s=600, max_ttl_s=600, turn_hold_s=hold_s)  # type: ignore[arg-type]


async def _follow_up(sessions: SessionStore, session_id: str, question: str, engine_s: float) -> list[str]:
    """A follow-up as the pipeline runs it: the turn, the session read under it, the answer, the record."""
    async with sessions.turn(session_id):
        session = await sessions.get(session_id)
        seen = [q for q, _ in session.history]
        await asyncio.sleep(engine_s)  # the engine answering
        await sessions.record_turn(session, question, f"answer to {question}", image=None, detection=None)
    return seen


async def test_follow_ups_on_two_replicas_at_once_take_turns(store_url: str) -> None:
    store_a, store_b = await opened(store_url), await opened(store_url)
    a, b = _sessions(store_a), _sessions(store_b)
    session = await a.create()
    first = asyncio.create_task(_follow_up(a, session.id, "on a", 0.5))
    await asyncio.sleep(0.1)  # a holds the turn
    second = asyncio.create_task(_follow_up(b, session.id, "on b", 0.0))
    assert await first == []
    assert await second == ["on a"], "b's follow-up waited for a's turn and sees it"
    assert [q for q, _ in (await b.get(session.id)).history] == ["on a", "on b"]
    await store_a.close()
    await store_b.close()


async def test_a_turn_held_by_a_crashed_replica_lapses(store_url: str) -> None:
    store_a, store_b = await opened(store_url), await opened(store_url)
    a, b = _sessions(store_a, hold_s=0.5), _sessions(store_b, hold_s=0.5)
    session = await a.create()
    crashed = a.turn(session.id)
    await crashed.__aenter__()  # a takes the turn and is never heard of again
    for task in asyncio.all_tasks():
        if task.get_coro().__qualname__.endswith("_keep_turn"):  # type: ignore[union-attr]
            task.cancel()  # its renewals stop with it
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await asyncio.wait_for(_follow_up(b, session.id, "on b", 0.0), 5) == []
    assert 0.3 < loop.time() - t0 < 2.0
    await store_a.close()
    await store_b.close()


async def test_a_turn_on_a_session_that_does_not_exist_does_not_wait(store_url: str) -> None:
    store = await opened(store_url)
    async with asyncio.timeout(2), _sessions(store).turn("s_missing"):
        pass
    await store.close()
