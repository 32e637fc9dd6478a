"""One streaming client for OpenAI-compatible servers: vLLM, SGLang and LMDeploy alike."""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import logging
import uuid
from collections.abc import AsyncGenerator
from typing import Any, Literal

import httpx
from opentelemetry import context as otel_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from engines.base import Delta, Finished, GenerationEvent, GenerationRequest, ImagePart, Message, Usage
from engines.errors import (
    EngineBadRequest,
    EngineError,
    EngineOverloaded,
    EngineTimeout,
    EngineUnavailable,
    EngineUnsupported,
)
from engines.transports import HttpClient, Response, transport

PixelOptions = Literal["none", "mm_processor_kwargs", "image_url"]
_PROPAGATOR = TraceContextTextMapPropagator()
log = logging.getLogger(__name__)


def message_to_openai(
    message: Message, vision: bool, pixels: tuple[int, int] | None = None, where: PixelOptions = "none"
) -> dict[str, Any]:
    """One chat message in OpenAI form; images become `image_url` data URLs for VLM engines (with the
    pixel budget inside the `image_url` object where the engine reads it there: LMDeploy)."""
    if message.image is None or not vision:
        return {"role": message.role, "content": message.text}
    url = f"data:{message.image.mime};base64," + base64.b64encode(message.image.data).decode("ascii")
    image_url: dict[str, Any] = {"url": url}
    if pixels is not None and where == "image_url":
        image_url |= {"min_pixels": pixels[0], "max_pixels": pixels[1]}
    return {
        "role": message.role,
        "content": [
            {"type": "image_url", "image_url": image_url},
            {"type": "text", "text": message.text},
        ],
    }


def parse_usage(raw: dict[str, Any] | None) -> Usage:
    """Usage from an OpenAI `usage` object; cached tokens from `prompt_tokens_details` when present."""
    if not raw:
        return Usage()
    details = raw.get("prompt_tokens_details") or {}
    multimodal = details.get("multimodal_tokens") or {}  # vLLM: {"image": n}; SGLang: details.image_tokens
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
        image_tokens=int(multimodal.get("image") or details.get("image_tokens") or 0),
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


# What vLLM answers when a text-only model gets an image (vllm/entrypoints/chat_utils.py), and when
# per-request processor options reach a 0.3x server started without --trust-request-mm-kwargs.
_NOT_MULTIMODAL = "is not a multimodal model"
_NO_REQUEST_KWARGS = "--trust-request-mm-kwargs"


def _status_error(status: int, body: bytes) -> EngineError:
    """Map an HTTP error status to the engine error tree."""
    text = f"HTTP {status}: {_error_message(body)}"
    if status == 400 and _NOT_MULTIMODAL in text:
        return EngineUnsupported(f"the model does not take images ({text}); vision needs a vision-language model")
    if status == 400 and _NO_REQUEST_KWARGS in text:
        return EngineUnsupported(f"the server refuses per-request pixel options ({text})")
    if status in (429, 503):
        return EngineOverloaded(text)
    if status == 408:
        return EngineTimeout(text)
    if 400 <= status < 500:
        return EngineBadRequest(text)
    return EngineUnavailable(text)


class _SSE:
    """Incremental parser of a chat-completions event stream: the texts of each fed piece's complete
    lines; the finish reason and usage as they pass. Lines after `data: [DONE]` are ignored, but the
    caller reads on to the end of the body, so the connection can be reused."""

    __slots__ = ("_base", "_buf", "_counted", "done", "error", "finish_reason", "usage")

    def __init__(self, base: str) -> None:
        self._base = base
        self._buf = b""
        self.done = False
        self.error: EngineError | None = None  # raised by the caller once the texts before it are out
        self.finish_reason = "stop"
        self.usage = Usage()
        self._counted = 0  # completion tokens already handed out with texts

    def tokens(self, texts: int) -> int:
        """Tokens the texts just fed took: the engine's running count where it streams one (vLLM's and
        SGLang's `continuous_usage_stats`), else one per text."""
        reported = self.usage.completion_tokens
        if reported <= self._counted:
            return texts
        taken, self._counted = reported - self._counted, reported
        return taken

    def feed(self, data: bytes) -> list[str]:
        lines = (self._buf + data).split(b"\n")
        self._buf = lines.pop()
        texts: list[str] = []
        for line in lines:
            if self.done or self.error or not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                self.done = True
                continue
            try:
                chunk = json.loads(payload)
                if chunk.get("error"):
                    self.error = EngineUnavailable(f"engine error mid-stream: {chunk['error']}")
                    break
                if chunk.get("usage"):
                    self.usage = parse_usage(chunk["usage"])
                for choice in chunk.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        texts.append(text)
                    if choice.get("finish_reason"):
                        self.finish_reason = str(choice["finish_reason"])
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self.error = EngineUnavailable(f"{self._base}: malformed stream: {exc}")
                self.error.__cause__ = exc
                break
        return texts


async def _read_all(resp: Response) -> bytes:
    parts = []
    while part := await resp.read():
        parts.append(part)
    return b"".join(parts)


@functools.cache
def probe_image() -> ImagePart:
    """A small grey JPEG (56 x 56: the least a Qwen2-VL processor takes) for vision warm-ups."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (56, 56), (128, 128, 128)).save(out, "JPEG")
    return ImagePart(out.getvalue(), "image/jpeg", 56, 56)


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
        pixel_options: PixelOptions = "none",
        probe_pixels: tuple[int, int] | None = None,
        abort_path: str | None = None,
        continue_fields: dict[str, Any] | None = None,
        continuous_usage: bool = False,
        http_client: HttpClient = "lean",
    ) -> None:
        self._base = base_url.rstrip("/")
        self._kind = kind  # reported to clients: "vllm", "sglang", "lmdeploy" or plain "openai_http"
        # vLLM's `priority` request field; it is a 400 unless the server runs --scheduling-policy priority.
        self._send_priority = send_priority
        self._extra = dict(extra_body or {})
        self._model = model
        self._vision = vision
        self._pixel_options: PixelOptions = pixel_options  # where a request's pixel budget goes, if anywhere
        self._probe_pixels = probe_pixels  # the budget the warm-up's image is sent with (per-request options)
        # Set (SGLang): each request carries a `rid`, and a stream left before its end is also aborted by
        # POSTing {"rid": ...} here, since closing the connection stops the engine only later.
        self._abort_path = abort_path
        self._aborts: set[asyncio.Task[None]] = set()
        # The body fields that make the server continue a final assistant message (None: it cannot).
        self._continue_fields = continue_fields
        self._continuous_usage = continuous_usage  # the server streams a running token count
        self._context_tokens = 0  # the server's max_model_len, once /v1/models told it
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._read_timeout_s = read_timeout_s
        self._transport = transport(
            http_client, self._base, connect_s=connect_timeout_s, read_s=read_timeout_s,
            max_connections=max_connections, api_key=api_key,
        )  # fmt: skip
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

    @property
    def context_tokens(self) -> int:
        return self._context_tokens

    def payload(self, request: GenerationRequest, rid: str = "") -> dict[str, Any]:
        """The JSON body this engine POSTs to /v1/chat/completions for `request` (`rid`: the engine's id for it)."""
        pixels, where = request.pixel_budget, self._pixel_options
        body = {
            **self._extra,
            "model": self._model,
            "messages": [message_to_openai(m, self._vision, pixels, where) for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True}
            | ({"continuous_usage_stats": True} if self._continuous_usage else {}),
        }
        if request.continue_final:
            if self._continue_fields is None:
                raise EngineUnsupported(f"{self._base}: this server cannot continue a partial answer")
            body |= self._continue_fields
        if self._send_priority:
            body["priority"] = request.priority
        if rid:
            body["rid"] = rid
        if pixels is not None and where == "mm_processor_kwargs" and self._vision:
            body["mm_processor_kwargs"] = {"min_pixels": pixels[0], "max_pixels": pixels[1]}
        if request.response_schema is not None:  # vLLM, SGLang and LMDeploy all take OpenAI's form
            schema = request.response_schema
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema.name, "schema": schema.schema, "strict": True},
            }
        return body

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        """Stream the answer; leaving the loop early closes the connection, which aborts the request."""
        if not self._model:
            await self._discover_model()
        engine_rid = self._engine_rid()
        body = json.dumps(self.payload(request, engine_rid), ensure_ascii=False, separators=(",", ":")).encode()
        headers = dict(request.trace_headers)
        if request.request_id:
            headers["X-Request-Id"] = request.request_id
        # The request's trace context is current while the request goes out: an instrumented client's
        # span is its child, and sends its own traceparent (the plain one sends the headers as given).
        token = otel_context.attach(_PROPAGATOR.extract(headers)) if request.trace_headers else None
        try:
            resp = await self._transport.open(body, headers)
        finally:
            if token is not None:
                otel_context.detach(token)
        stream = _SSE(self._base)
        try:
            if resp.status != 200:
                raise _status_error(resp.status, await _read_all(resp))
            while chunk := await resp.read():
                if texts := stream.feed(chunk):  # one event per read
                    yield Delta(texts[0] if len(texts) == 1 else "".join(texts), stream.tokens(len(texts)))
                if stream.error:
                    raise stream.error
                if stream.done:
                    break
            else:
                for text in stream.feed(b"\n"):  # a last line without its newline
                    yield Delta(text)
                if stream.error:
                    raise stream.error
        finally:
            if stream.done:
                resp.done()
            else:  # closed at once, synchronously (no await a second cancellation could skip)
                resp.abort()
                self._abort(engine_rid)
        yield Finished(finish_reason=stream.finish_reason, usage=stream.usage, model=self._model)

    def _engine_rid(self) -> str:
        """A fresh id the engine knows this generation by, where it aborts by id ('' elsewhere)."""
        return uuid.uuid4().hex if self._abort_path else ""

    def _abort(self, rid: str) -> None:
        """Abort generation `rid` on the engine, in the background (the caller may be cancelled)."""
        if not rid or self._abort_path is None:
            return
        task = asyncio.get_running_loop().create_task(self._post_abort(self._abort_path, rid))
        self._aborts.add(task)
        task.add_done_callback(self._aborts.discard)

    async def _post_abort(self, path: str, rid: str) -> None:
        try:
            resp = await self._client.post(path, json={"rid": rid}, timeout=5.0)
            if resp.status_code != 200:
                log.warning("%s%s for %s: HTTP %d", self._base, path, rid, resp.status_code)
        except httpx.HTTPError as exc:  # the connection close still stops it, later
            log.warning("%s%s for %s: %s", self._base, path, rid, exc)

    async def _discover_model(self) -> None:
        """The served model's id (when none was configured) and context length from `/v1/models`."""
        try:
            resp = await self._client.get("/v1/models")
        except httpx.HTTPError as exc:
            raise EngineUnavailable(f"{self._base}: cannot list models: {exc}") from exc
        if resp.status_code != 200:
            raise _status_error(resp.status_code, resp.content)
        models = resp.json().get("data") or []
        if not models:
            raise EngineUnavailable(f"{self._base}: serves no model")
        if not self._model:
            self._model = str(models[0]["id"])
        entry: dict[str, Any] = next((m for m in models if m.get("id") == self._model), {})
        self._context_tokens = int(entry.get("max_model_len") or 0)  # vLLM and SGLang report it

    async def health(self) -> bool:
        try:
            resp = await self._client.get("/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    async def warmup(self) -> None:
        """Read the model's id and context, then run one tiny generation (with a small image on a vision
        engine, so a text-only model behind `vision = true` is found now, not on a client's call)."""
        try:
            await self._discover_model()
        except EngineError:
            if not self._model:  # without a configured model there is nothing to send
                raise
        image = probe_image() if self._vision else None
        message = Message("user", "ping", image)
        pixels = self._probe_pixels if self._vision else None
        request = GenerationRequest(messages=(message,), max_tokens=1, temperature=0.0, pixel_budget=pixels)
        async for _ in self.generate(request):
            pass

    async def close(self) -> None:
        if self._aborts:  # aborts already sent go out before the client closes
            await asyncio.wait(self._aborts, timeout=5.0)
        await self._transport.close()
        await self._client.aclose()
