"""Migration policy units around scripted engines: where a broken answer continues, with what request.

The real-process version (a vLLM replica SIGKILLed mid-answer) is in test_faults.py."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from engines.base import GenerationEvent, GenerationRequest
from engines.registry import SERVER_KINDS
from router.api.convert import route_pb
from router.config import BreakerConfig
from router.dispatch.breaker import CircuitBreaker
from router.dispatch.dispatcher import Served
from router.dispatch.pools import Pool
from router.errors import Unavailable
from router.observe import tracing
from router.types import Migration, RequestKind, Route
from tests.router.dispatch.test_dispatch import REQ, Scripted, dispatcher, pool, run


class Recording(Scripted):
    """A scripted engine that keeps the requests it got."""

    def __init__(self, name: str, *script: str) -> None:
        super().__init__(name, *script)
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        self.requests.append(request)
        async for event in super().generate(request):
            yield event


def served_by(p: Pool, server: str | None = "vllm") -> Pool:
    """`p` with every replica behind a known server kind (None: a plain OpenAI-compatible server)."""
    for r in p.replicas:
        r.server = SERVER_KINDS[server] if server else None
    return p


async def answer(*pools: Pool) -> tuple[str, Served]:
    """The text and end of one single-shot answer, one try per pool."""
    return await run(dispatcher(*pools, attempts=1))


async def test_a_stream_broken_after_text_continues_on_the_other_replica() -> None:
    a, b = Recording("a", "die_mid"), Recording("b", "ok")
    text, served = await answer(served_by(pool("p", a, b)))
    assert text == "ab", "the client's text: a's part, then b's, nothing repeated"
    assert served.route.replica == "b" and served.route.migrations == (Migration("a", "p", "b", 1, 1),)
    (cont,) = b.requests
    assert cont.continue_final and cont.messages[:-1] == REQ.messages
    assert (cont.messages[-1].role, cont.messages[-1].text) == ("assistant", "a")
    assert cont.max_tokens == REQ.max_tokens - 1
    assert served.finished.usage.completion_tokens == 2, "the answer's tokens: 1 kept + 1 continued"


async def test_switched_off_or_no_replica_that_continues_ends_unavailable() -> None:
    off = served_by(pool("p", Scripted("a", "die_mid"), Recording("b", "ok"), migrate_on_failure=False))
    with pytest.raises(Unavailable, match="stream broken"):
        await answer(off)
    assert off.replicas[1].engine.calls == 0  # type: ignore[attr-defined]
    plain = served_by(pool("p", Scripted("a", "die_mid"), Scripted("b", "ok")), server=None)
    with pytest.raises(Unavailable, match="stream broken"):
        await answer(plain)
    assert plain.replicas[1].engine.calls == 0  # type: ignore[attr-defined]


async def test_a_lone_replica_continues_on_a_later_pool_of_the_same_model_only() -> None:
    same = served_by(pool("q", Recording("c", "ok"), model="m1"))
    text, served = await answer(served_by(pool("p", Scripted("a", "die_mid"), model="m1")), same)
    assert text == "ac" and served.route.pool == "q"
    assert served.route.migrations == (Migration("a", "q", "c", 1, 1),)
    other = served_by(pool("q", Recording("c", "ok"), model="m2"))
    with pytest.raises(Unavailable):
        await answer(served_by(pool("p", Scripted("a", "die_mid"), model="m1")), other)
    assert other.replicas[0].engine.calls == 0  # type: ignore[attr-defined]


async def test_a_continuation_that_breaks_too_moves_again_and_keeps_every_part() -> None:
    replicas = [Recording("a", "die_mid"), Recording("b", "die_mid"), Recording("c", "die_mid"), Recording("d", "ok")]
    p = served_by(pool("p", *replicas))
    p.breaker = CircuitBreaker("p", BreakerConfig(consecutive_failures=5))  # three failures leave it closed
    text, served = await answer(p)
    moves = served.route.migrations
    assert len(moves) == 3 and served.route.replica == "d", moves
    assert text == "".join(m.from_replica for m in moves) + "d"
    assert [m.tokens_kept for m in moves] == [1, 2, 3]
    (last,) = replicas[3].requests
    assert last.messages[-1].text == text[:3] and last.max_tokens == REQ.max_tokens - 3
    assert all(len(r.requests) == 1 for r in replicas), "no replica is tried twice for one answer"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """The router's spans, kept in memory (an SDK tracer in place of the module's)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "tracer", provider.get_tracer("test"))
    return exporter


async def test_the_move_is_traced_as_a_migration_over_the_continuations_attempt(spans: InMemorySpanExporter) -> None:
    with tracing.tracer.start_as_current_span("rpc"):
        await answer(served_by(pool("p", Scripted("a", "die_mid"), Recording("b", "ok"))))
    done = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in done}

    def parent(span: ReadableSpan) -> ReadableSpan:
        assert span.parent is not None, span.name
        return by_id[span.parent.span_id]

    (move,) = [s for s in done if s.name == "migration"]
    assert dict(move.attributes or {}) == {
        "roadwork.pool": "p", "roadwork.migrated_from": "a", "roadwork.kept_tokens": 1,
        "roadwork.migrated_to_pool": "p", "roadwork.migrated_to": "b",
    }  # fmt: skip
    assert parent(move).name == "rpc"
    streams = {(s.attributes or {})["roadwork.replica"]: s for s in done if s.name == "engine stream"}
    assert streams["a"].status.status_code is StatusCode.ERROR
    assert parent(streams["a"]).name == "dispatch attempt" and parent(parent(streams["a"])).name == "rpc"
    attempt = parent(streams["b"])
    assert attempt.name == "dispatch attempt" and (attempt.attributes or {})["roadwork.replica"] == "b"
    assert parent(attempt) is move, "the continuation's attempt is the migration's child"


async def test_a_move_no_replica_takes_is_a_failed_migration_span(spans: InMemorySpanExporter) -> None:
    with pytest.raises(Unavailable):
        await answer(served_by(pool("p", Scripted("a", "die_mid"), model="m1")))
    (move,) = [s for s in spans.get_finished_spans() if s.name == "migration"]
    assert move.status.status_code is StatusCode.ERROR and "roadwork.migrated_to" not in (move.attributes or {})


def test_the_route_on_the_wire_names_every_move() -> None:
    moves = (Migration("http://a:1", "p", "http://b:1", 7, 30), Migration("http://b:1", "q", "http://c:1", 9, 41))
    wire = route_pb(Route(RequestKind.SINGLE_SHOT, "q", "vllm", "http://c:1", "m", (), moves))
    back = tuple(
        Migration(m.from_replica, m.to_pool, m.to_replica, m.tokens_kept, m.chars_kept) for m in wire.migrations
    )
    assert back == moves
