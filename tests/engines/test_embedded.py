"""The embedded engine on the real placeholder model (transformers, CPU)."""

from __future__ import annotations

import asyncio
import io
import time
from contextlib import aclosing

import pytest

from engines.base import Delta, Finished, GenerationRequest, ImagePart, Message
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


# -- the bundled demo vision-language model (engines/models/roadwork-vlm) ---------------------------


@pytest.fixture(scope="module")
async def demo() -> EmbeddedEngine:
    from engines.embedded import DEMO_MODEL

    e = EmbeddedEngine(DEMO_MODEL)
    assert e.vision and e.model == DEMO_MODEL
    await e.warmup()
    return e


def _sample(width: int = 448, height: int = 336) -> ImagePart:
    from PIL import Image

    from tests.conftest import SAMPLE

    out = io.BytesIO()
    Image.open(SAMPLE).resize((width, height)).save(out, "JPEG", quality=90)
    return ImagePart(out.getvalue(), "image/jpeg", width, height)


SUMMARY = (  # what the router's prompt says of the sample (router.flow.prompting: the demo detectors' votes on it)
    "You answer questions about street images for roadwork (construction zones). Use the detection summary; "
    "say when you are unsure.\nDetection: roadwork likely (P(roadwork) = 1.00, image 640x480). Objects found: "
    "5 worker (max conf 0.79), 2 cone (max conf 0.94), 2 work_vehicle (max conf 0.69). Detector votes: "
    "yolo11n-roadwork: yes (0.94); yolov8n-roadwork: yes (0.87)."
)


async def test_the_demo_model_takes_the_image_and_answers_the_sample(demo: EmbeddedEngine) -> None:
    from engines.embedded import DEMO_NOTICE

    messages = (Message("system", SUMMARY), Message("user", "How many cones are there?", _sample()))
    events = await _collect(demo, GenerationRequest(messages, 32, 0.0))
    fin = events[-1]
    assert isinstance(fin, Finished) and fin.finish_reason == "stop" and fin.notices == (DEMO_NOTICE,)
    assert fin.usage.image_tokens == 192 and fin.usage.prompt_tokens > 192  # 448x336: 16 x 12 merged patches
    assert "".join(e.text for e in events if isinstance(e, Delta)) == "There are 2 cones."  # two, in the picture
    lanes = (Message("system", SUMMARY), Message("user", "How many lanes are closed?", _sample()))
    assert "".join(e.text for e in await _collect(demo, GenerationRequest(lanes, 32, 0.0)) if isinstance(e, Delta)) == (
        "1 lane is closed."
    )
    small = await _collect(demo, GenerationRequest((Message("user", "Is work active?", _sample(224, 224)),), 32, 0.0))
    assert isinstance(small[-1], Finished) and small[-1].usage.image_tokens == 64


async def test_a_denormal_temperature_decodes_greedily(demo: EmbeddedEngine, engine: EmbeddedEngine) -> None:
    """1.4e-45 (a valid temperature the fuzzer sent) made sampling raise: under 1e-5 is greedy, as in vLLM."""
    messages = (Message("system", SUMMARY), Message("user", "How many cones are there?", _sample()))
    tiny = await _collect(demo, GenerationRequest(messages, 8, 1.4e-45))
    greedy = await _collect(demo, GenerationRequest(messages, 8, 0.0))
    assert [e for e in tiny if isinstance(e, Delta)] == [e for e in greedy if isinstance(e, Delta)]
    text = (Message("user", "hello"),)
    assert isinstance((await _collect(engine, GenerationRequest(text, 4, 1.4e-45)))[-1], Finished)


async def test_closing_a_vision_stream_stops_generation(demo: EmbeddedEngine) -> None:
    config = demo._model.generation_config
    eos, config.eos_token_id = config.eos_token_id, None  # nothing ends it but the cancel (2,000 tokens: ~20 s)
    try:
        long = GenerationRequest((Message("user", "cones?", _sample()),), max_tokens=2000, temperature=1.0)
        async with aclosing(demo.generate(long)) as gen:
            async for _ in gen:
                break
        started = time.monotonic()
        events = await asyncio.wait_for(_collect(demo, GenerationRequest((Message("user", "hi"),), 2, 0.0)), 20)
        assert time.monotonic() - started < 3, "the canceled generation kept the engine's thread busy"
    finally:
        config.eos_token_id = eos
    assert isinstance(events[-1], Finished) and events[-1].usage.completion_tokens <= 2
