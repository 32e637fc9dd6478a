"""Parsing in the OpenAI-compatible client: message shapes, usage, HTTP error mapping."""

from __future__ import annotations

import base64
import json

import pytest

from engines.base import GenerationRequest, ImagePart, Message
from engines.errors import EngineBadRequest, EngineOverloaded, EngineTimeout, EngineUnavailable, EngineUnsupported
from engines.openai_http import OpenAIHTTPEngine, PixelOptions, _status_error, message_to_openai, parse_usage


def test_image_becomes_data_url_only_for_vision_engines() -> None:
    msg = Message("user", "cones?", ImagePart(b"\x89PNG..", "image/png"))
    assert message_to_openai(msg, vision=False) == {"role": "user", "content": "cones?"}
    parts = message_to_openai(msg, vision=True)["content"]
    assert parts[0]["type"] == "image_url"
    assert parts[0]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(b"\x89PNG..").decode()
    assert parts[1] == {"type": "text", "text": "cones?"}


def test_usage_with_and_without_cached_details() -> None:
    u = parse_usage({"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 8}})
    assert (u.prompt_tokens, u.completion_tokens, u.cached_tokens) == (10, 3, 8)
    assert parse_usage({"prompt_tokens": 4, "completion_tokens": 1, "prompt_tokens_details": None}).cached_tokens == 0
    assert parse_usage(None).prompt_tokens == 0


def test_status_mapping_keeps_server_message() -> None:
    e = _status_error(400, b'{"error": {"message": "context too long"}}')
    assert isinstance(e, EngineBadRequest) and not e.retryable and "context too long" in str(e)
    assert isinstance(_status_error(400, b'{"message": "bad", "type": "BadRequestError"}'), EngineBadRequest)
    assert isinstance(_status_error(429, b"busy"), EngineOverloaded)
    assert isinstance(_status_error(503, b""), EngineOverloaded)
    assert isinstance(_status_error(408, b""), EngineTimeout)
    five = _status_error(500, b"<html>oops</html>")
    assert isinstance(five, EngineUnavailable) and five.retryable and "oops" in str(five)


def test_priority_is_sent_only_when_the_pool_schedules_by_it() -> None:
    from engines.base import GenerationRequest, Message
    from engines.openai_http import OpenAIHTTPEngine

    request = GenerationRequest(messages=(Message("user", "hi"),), max_tokens=4, temperature=0.0, priority=1)
    assert "priority" not in OpenAIHTTPEngine("http://x", "m").payload(request)  # vLLM fcfs rejects it
    assert OpenAIHTTPEngine("http://x", "m", send_priority=True).payload(request)["priority"] == 1


def test_image_tokens_from_vllm_and_sglang_usage() -> None:
    vllm_usage = {
        "prompt_tokens": 300,
        "prompt_tokens_details": {"cached_tokens": 0, "multimodal_tokens": {"image": 256}},
    }
    assert parse_usage(vllm_usage).image_tokens == 256
    sglang_usage = {"prompt_tokens": 300, "prompt_tokens_details": {"cached_tokens": 0, "image_tokens": 192}}
    assert parse_usage(sglang_usage).image_tokens == 192
    assert parse_usage({"prompt_tokens": 3, "prompt_tokens_details": {"multimodal_tokens": None}}).image_tokens == 0


def test_a_text_only_model_sent_an_image_is_unsupported_not_bad_input() -> None:
    e = _status_error(400, b'{"error": {"message": "tiny is not a multimodal model", "code": 400}}')
    assert isinstance(e, EngineUnsupported) and not e.retryable and "vision-language model" in str(e)
    refused = _status_error(400, b'{"error": {"message": "Start the server with --trust-request-mm-kwargs"}}')
    assert isinstance(refused, EngineUnsupported)


def _vision_payload(where: PixelOptions, **kw: object) -> dict[str, object]:
    from engines.base import GenerationRequest, ResponseSchema

    engine = OpenAIHTTPEngine("http://127.0.0.1:1", "m", vision=True, pixel_options=where)
    image = ImagePart(b"\xff\xd8\xff..", "image/jpeg", 64, 64)
    request = GenerationRequest((Message("user", "q", image),), max_tokens=4, temperature=0.0, **kw)  # type: ignore[arg-type]
    if "response_schema" in kw:
        assert isinstance(kw["response_schema"], ResponseSchema)
    return engine.payload(request)


def test_the_pixel_budget_goes_where_each_engine_reads_it() -> None:
    budget = (3136, 200704)
    vllm = _vision_payload("mm_processor_kwargs", pixel_budget=budget)
    assert vllm["mm_processor_kwargs"] == {"min_pixels": 3136, "max_pixels": 200704}
    lmdeploy = _vision_payload("image_url", pixel_budget=budget)
    image_url = lmdeploy["messages"][0]["content"][0]["image_url"]  # type: ignore[index]
    assert (
        image_url["min_pixels"] == 3136 and image_url["max_pixels"] == 200704 and "mm_processor_kwargs" not in lmdeploy
    )
    sglang = _vision_payload("none", pixel_budget=budget)
    assert "mm_processor_kwargs" not in sglang and set(sglang["messages"][0]["content"][0]["image_url"]) == {"url"}  # type: ignore[index]
    assert "mm_processor_kwargs" not in _vision_payload("mm_processor_kwargs")  # no budget on the request


def test_a_response_schema_becomes_openai_json_schema_response_format() -> None:
    from engines.base import ResponseSchema

    schema = {"type": "object", "properties": {"roadwork": {"type": "boolean"}}}
    body = _vision_payload("none", response_schema=ResponseSchema("roadwork_verdict", schema))
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "roadwork_verdict", "schema": schema, "strict": True},
    }
    assert "response_format" not in _vision_payload("none")


def test_a_partial_answer_is_continued_with_each_servers_fields_or_refused() -> None:
    from engines.registry import SERVER_KINDS

    request = GenerationRequest(
        messages=(Message("user", "hi"), Message("assistant", "Yes, th")), max_tokens=4, temperature=0.0,
        continue_final=True,
    )  # fmt: skip
    bodies = {}
    for name, server in SERVER_KINDS.items():
        engine = OpenAIHTTPEngine("http://x", "m", continue_fields=server.continue_fields)
        bodies[name] = engine.payload(request)
        assert bodies[name]["messages"][-1] == {"role": "assistant", "content": "Yes, th"}
    assert bodies["vllm"]["continue_final_message"] and bodies["vllm"]["add_generation_prompt"] is False
    assert bodies["sglang"]["continue_final_message"] and "add_generation_prompt" not in bodies["sglang"]
    assert "continue_final_message" not in bodies["lmdeploy"]  # its template continues a final assistant turn
    with pytest.raises(EngineUnsupported, match="cannot continue"):
        OpenAIHTTPEngine("http://x", "m").payload(request)
    assert "continue_final_message" not in OpenAIHTTPEngine("http://x", "m", continue_fields={"a": 1}).payload(
        GenerationRequest(messages=request.messages[:1], max_tokens=4, temperature=0.0)
    )


def test_tokens_per_delta_come_from_the_running_count_where_the_server_streams_one() -> None:
    from engines.openai_http import _SSE

    def chunk(text: str, tokens: int | None) -> bytes:
        usage = {"usage": {"completion_tokens": tokens}} if tokens is not None else {}
        return f"data: {json.dumps({'choices': [{'delta': {'content': text}}], **usage})}\n".encode()

    counted = _SSE("x")
    assert counted.tokens(len(counted.feed(chunk("a", 1)))) == 1
    counted.feed(chunk("", 2))  # a token with no text of its own yet (a partial UTF-8 character)
    assert counted.tokens(len(counted.feed(chunk("é", 3)))) == 2
    plain = _SSE("x")
    assert [plain.tokens(len(plain.feed(chunk(t, None)))) for t in "ab"] == [1, 1]
