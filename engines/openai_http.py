"""One streaming client for OpenAI-compatible servers: vLLM, SGLang and LMDeploy alike."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from engines.base import Delta, Finished, GenerationEvent, GenerationRequest, Message, Usage
from engines.errors import (
    EngineBadRequest,
    EngineError,
    EngineOverloaded,
    EngineTimeout,
    EngineUnavailable,
)


def message_to_openai(message: Message, vision: bool) -> dict[str, Any]:
    """One chat message in OpenAI form; images become `image_url` data URLs for VLM engines."""
    if message.image is None or not vision:
        return {"role": message.role, "content": message.text}
    url = f"data:{message.image.mime};base64," + base64.b64encode(message.image.data).decode("ascii")
    return {
        "role": message.role,
        "content": [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": message.text},
        ],
    }


def parse_usage(raw: dict[str, Any] | None) -> Usage:
    """Usage from an OpenAI `usage` object; cached tokens from `prompt_tokens_details` when present."""
    if not raw:
        return Usage()
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
    )


def _error_message(body: bytes) -> str:
    """The server's own error text (OpenAI `{"error": {"message": ...}}` or vLLM `{"message": ...}`)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:500]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if data.get("message"):
            return str(data["message"])
    return str(data)[:500]


def _status_error(status: int, body: bytes) -> EngineError:
    """Map an HTTP error status to the engine error tree."""
    text = f"HTTP {status}: {_error_message(body)}"
    if status in (429, 503):
        return EngineOverloaded(text)
    if status == 408:
        return EngineTimeout(text)
    if 400 <= status < 500:
        return EngineBadRequest(text)
    return EngineUnavailable(text)


class OpenAIHTTPEngine:
    """A replica reached over HTTP; streams `/v1/chat/completions` with `include_usage`."""

    def __init__(
        self,
        base_url: str,
        model: str = "",
        *,
        vision: bool = False,
        api_key: str = "",
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        max_connections: int = 256,
        extra_body: dict[str, Any] | None = None,
        kind: str = "openai_http",
        send_priority: bool = False,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._kind = kind  # reported to clients: "vllm", "sglang", "lmdeploy" or plain "openai_http"
        # vLLM's `priority` request field; it is a 400 unless the server runs --scheduling-policy priority.
        self._send_priority = send_priority
        self._extra = dict(extra_body or {})
        self._model = model
        self._vision = vision
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self._base,
            headers=headers,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    @property
    def name(self) -> str:
        return self._base

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def vision(self) -> bool:
        return self._vision

    @property
    def model(self) -> str:
        return self._model

    def _transport_error(self, exc: Exception) -> EngineError:
        """A connection-level failure: a timeout, or the engine unreachable / the stream broken."""
        if isinstance(exc, httpx.TimeoutException):
            return EngineTimeout(f"{self._base}: {type(exc).__name__}")
        return EngineUnavailable(f"{self._base}: {type(exc).__name__}: {exc}")

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The JSON body this engine POSTs to /v1/chat/completions for `request`."""
        body = {
            **self._extra,
            "model": self._model,
            "messages": [message_to_openai(m, self._vision) for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self._send_priority:
            body["priority"] = request.priority
        return body

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        """Stream the answer; leaving the loop early closes the connection, which aborts the request."""
        if not self._model:
            await self._discover_model()
        headers = {"X-Request-Id": request.request_id} if request.request_id else {}
        finish_reason = "stop"
        usage = Usage()
        request_ = self._client.build_request(
            "POST", "/v1/chat/completions", json=self.payload(request), headers=headers
        )
        try:
            resp = await self._client.send(request_, stream=True)
        except httpx.TransportError as exc:  # timeouts included
            raise self._transport_error(exc) from exc
        try:
            if resp.status_code != 200:
                raise _status_error(resp.status_code, await resp.aread())
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if chunk.get("error"):
                    raise EngineUnavailable(f"engine error mid-stream: {chunk['error']}")
                if chunk.get("usage"):
                    usage = parse_usage(chunk["usage"])
                for choice in chunk.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield Delta(text)
                    if choice.get("finish_reason"):
                        finish_reason = str(choice["finish_reason"])
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise self._transport_error(exc) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise EngineUnavailable(f"{self._base}: malformed stream: {exc}") from exc
        finally:
            # Closing the unfinished response closes its connection: that is what makes the engine
            # abort the request. Shielded, so a second cancellation during cleanup cannot skip it.
            await asyncio.shield(resp.aclose())
        yield Finished(finish_reason=finish_reason, usage=usage, model=self._model)

    async def _discover_model(self) -> None:
        """Take the served model's id from `/v1/models` when none was configured."""
        try:
            resp = await self._client.get("/v1/models")
        except httpx.HTTPError as exc:
            raise EngineUnavailable(f"{self._base}: cannot list models: {exc}") from exc
        if resp.status_code != 200:
            raise _status_error(resp.status_code, resp.content)
        models = resp.json().get("data") or []
        if not models:
            raise EngineUnavailable(f"{self._base}: serves no model")
        self._model = str(models[0]["id"])

    async def health(self) -> bool:
        try:
            resp = await self._client.get("/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    async def warmup(self) -> None:
        """Resolve the model and run one tiny generation."""
        request = GenerationRequest(messages=(Message("user", "ping"),), max_tokens=1, temperature=0.0)
        async for _ in self.generate(request):
            pass

    async def close(self) -> None:
        await self._client.aclose()
