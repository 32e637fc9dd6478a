"""The OpenAI-compatible client against a REAL vLLM server (CPU build, tiny local model)."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

from engines.base import Delta, Finished, GenerationRequest, Message
from engines.errors import EngineBadRequest, EngineUnavailable
from engines.openai_http import OpenAIHTTPEngine
from tests.conftest import VLLMServer, free_port

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("http_client")]  # each test on both HTTP clients


def _req(text: str, max_tokens: int = 16) -> GenerationRequest:
    return GenerationRequest(messages=(Message("system", "You answer about roadwork. " * 8), Message("user", text)),
                             max_tokens=max_tokens, temperature=0.0)  # fmt: skip


async def test_streams_text_and_usage(vllm_server: VLLMServer) -> None:
    engine = OpenAIHTTPEngine(vllm_server.url)  # model discovered from /v1/models
    try:
        assert await engine.health()
        events = [e async for e in engine.generate(_req("Is there roadwork?", 12))]
        fin = events[-1]
        assert isinstance(fin, Finished) and fin.model == "tiny"
        assert any(isinstance(e, Delta) and e.text for e in events[:-1])
        assert fin.usage.prompt_tokens > 20 and fin.usage.completion_tokens == 12 and fin.finish_reason == "length"
    finally:
        await engine.close()


async def test_repeated_prefix_reports_cached_tokens(vllm_server: VLLMServer) -> None:
    engine = OpenAIHTTPEngine(vllm_server.url, "tiny")
    try:
        prompt = "How many lanes are closed by the cones near the barrier? " * 6
        first = [e async for e in engine.generate(_req(prompt, 2))][-1]
        second = [e async for e in engine.generate(_req(prompt, 2))][-1]
        assert isinstance(first, Finished) and isinstance(second, Finished)
        assert second.usage.cached_tokens > 0.5 * second.usage.prompt_tokens
    finally:
        await engine.close()


async def test_prompt_over_context_is_bad_request_with_server_message(vllm_server: VLLMServer) -> None:
    engine = OpenAIHTTPEngine(vllm_server.url, "tiny")
    try:
        with pytest.raises(EngineBadRequest, match="maximum context length"):
            async for _ in engine.generate(_req("cone " * 20000)):
                pass
    finally:
        await engine.close()


async def test_unknown_model_is_bad_request(vllm_server: VLLMServer) -> None:
    engine = OpenAIHTTPEngine(vllm_server.url, "no-such-model")
    try:
        with pytest.raises(EngineBadRequest, match=r"404|does not exist|not found"):
            async for _ in engine.generate(_req("hi")):
                pass
    except AssertionError:
        raise
    finally:
        await engine.close()


async def test_dead_server_is_unavailable() -> None:
    engine = OpenAIHTTPEngine(f"http://127.0.0.1:{free_port()}", "tiny", connect_timeout_s=1)
    try:
        assert not await engine.health()
        with pytest.raises(EngineUnavailable):
            async for _ in engine.generate(_req("hi")):
                pass
    finally:
        await engine.close()


async def test_closing_the_stream_aborts_generation_on_vllm(vllm_server: VLLMServer) -> None:
    """Leaving the stream early closes the connection and vLLM aborts the request (trials where
    vLLM delivered the stream in one burst, completing it first, are dropped)."""
    engine = OpenAIHTTPEngine(vllm_server.url, "tiny", extra_body={"ignore_eos": True})
    outcomes = []
    try:
        for _ in range(12):
            before = vllm_server.finished()
            req = GenerationRequest(messages=(Message("user", "Describe the work zone."),), max_tokens=10000,
                                    temperature=0.0)  # fmt: skip
            chunks = 0
            async with aclosing(engine.generate(req)) as gen:
                async for e in gen:
                    chunks += isinstance(e, Delta)
                    if chunks == 5:
                        break
            outcomes.append(await asyncio.to_thread(vllm_server.outcome, before))
            if outcomes.count("aborted") >= 3:
                break
        assert outcomes.count("aborted") >= 3, outcomes
    finally:
        await engine.close()
