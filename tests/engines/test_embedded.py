"""The embedded engine on the real placeholder model (transformers, CPU)."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

from engines.base import Delta, Finished, GenerationRequest, Message
from engines.embedded import PLACEHOLDER_NOTICE, EmbeddedEngine
from engines.errors import EngineBadRequest, EngineUnavailable


def _req(text: str = "Is there roadwork?", max_tokens: int = 16, temperature: float = 0.0) -> GenerationRequest:
    return GenerationRequest(messages=(Message("system", "S"), Message("user", text)), max_tokens=max_tokens,
                             temperature=temperature)  # fmt: skip


@pytest.fixture(scope="module")
async def engine() -> EmbeddedEngine:
    e = EmbeddedEngine()
    await e.warmup()
    assert await e.health()
    return e


async def test_streams_deltas_then_usage(engine: EmbeddedEngine) -> None:
    events = [e async for e in engine.generate(_req(max_tokens=10))]
    assert isinstance(events[-1], Finished) and all(isinstance(e, Delta) for e in events[:-1])
    fin = events[-1]
    assert fin.usage.prompt_tokens > 5 and 0 < fin.usage.completion_tokens <= 10
    assert fin.finish_reason in ("length", "stop") and fin.notices == (PLACEHOLDER_NOTICE,)
    again = [e async for e in engine.generate(_req(max_tokens=10))]  # greedy: deterministic
    assert "".join(e.text for e in events[:-1] if isinstance(e, Delta)) == "".join(
        e.text for e in again[:-1] if isinstance(e, Delta)
    )


async def test_sampling_with_temperature(engine: EmbeddedEngine) -> None:
    events = [e async for e in engine.generate(_req(max_tokens=5, temperature=1.0))]
    assert isinstance(events[-1], Finished)


async def test_closing_the_stream_stops_generation(engine: EmbeddedEngine) -> None:
    async with aclosing(engine.generate(_req(max_tokens=2000))) as gen:
        async for _ in gen:
            break
    # The worker stops at its next token, so the engine is free again at once.
    events = await asyncio.wait_for(_collect(engine, _req(max_tokens=3)), 10)
    assert isinstance(events[-1], Finished) and events[-1].usage.completion_tokens <= 3


async def _collect(engine: EmbeddedEngine, req: GenerationRequest) -> list[object]:
    return [e async for e in engine.generate(req)]


async def test_prompt_over_context_is_a_bad_request(engine: EmbeddedEngine) -> None:
    with pytest.raises(EngineBadRequest, match="context"):
        await _collect(engine, _req("roadwork " * 20000))


async def test_missing_model_path_is_unavailable(tmp_path: object) -> None:
    e = EmbeddedEngine(f"{tmp_path}/no-such-model")
    with pytest.raises(EngineUnavailable, match="failed to load"):
        await e.warmup()
    assert not await e.health()
