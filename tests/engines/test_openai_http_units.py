"""Parsing in the OpenAI-compatible client: message shapes, usage, HTTP error mapping."""

from __future__ import annotations

import base64

from engines.base import ImagePart, Message
from engines.errors import EngineBadRequest, EngineOverloaded, EngineTimeout, EngineUnavailable
from engines.openai_http import _status_error, message_to_openai, parse_usage


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
