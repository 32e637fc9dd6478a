"""One streaming client for OpenAI-compatible servers: vLLM, SGLang and LMDeploy alike."""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import logging
import urllib.request
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from engines.base import Delta, Finished, GenerationEvent, GenerationRequest, ImagePart, Message, Usage
from engines.errors import (
    EngineBadRequest,
    EngineError,
    EngineOverloaded,
    EngineTimeout,
    EngineUnavailable,
    EngineUnsupported,
)

PixelOptions = Literal["none", "mm_processor_kwargs", "image_url"]
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


def _safe_header(value: str) -> bool:
    return value.isprintable() and value.isascii()


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


_DRAIN_S = 5.0  # how long the rest of a finished answer's body may take before its connection is dropped


class _Malformed(Exception):
    """The server's HTTP response does not parse."""


class _Timeout(Exception):
    """A lean-path timeout, named like httpx's (ConnectTimeout, ReadTimeout, PoolTimeout)."""


class _Conn:
    """One keep-alive HTTP/1.1 connection of `_LeanPool` and the state of the response on it."""

    __slots__ = ("buf", "chunked", "keep_alive", "left", "reader", "status", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.status, self.chunked, self.keep_alive, self.left = 0, False, False, -1
        self.buf = bytearray()  # chunked body bytes read but not yet parsed

    def usable(self) -> bool:
        """Idle and still open (a server that closed an idle connection has fed EOF by now)."""
        return not self.writer.transport.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        """Close at once, synchronously (cancellation-proof): the server sees the client go away."""
        self.writer.transport.abort()

    async def response_head(self) -> None:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise _Malformed(f"bad status line {lines[0][:80]!r}")
        self.status = int(parts[1])
        self.keep_alive = parts[0] == "HTTP/1.1"
        self.chunked, self.left = False, -1
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "transfer-encoding":
                self.chunked = value.endswith("chunked")
            elif name == "content-length":
                self.left = int(value)
            elif name == "connection" and value == "close":
                self.keep_alive = False
            elif name == "content-encoding" and value not in ("", "identity"):
                raise _Malformed(f"unrequested content-encoding {value!r}")
        if self.chunked:
            self.left = -1
            self.buf.clear()
        elif self.left < 0:
            self.keep_alive = False  # the body ends when the server closes

    async def read(self) -> bytes:
        """The next piece of the body; b"" at its end. Chunked: every complete chunk that has
        arrived (at least one), joined, so tokens the engine sent while we were busy come as one."""
        if self.chunked:
            while True:
                data = self._chunks()
                if data or not self.chunked:
                    return data
                more = await self.reader.read(65536)
                if not more:
                    raise asyncio.IncompleteReadError(bytes(self.buf), None)
                self.buf += more
        if self.left == 0:
            return b""
        data = await self.reader.read(65536 if self.left < 0 else min(self.left, 65536))
        if self.left > 0:
            if not data:
                raise asyncio.IncompleteReadError(b"", self.left)
            self.left -= len(data)
        return data

    def _chunks(self) -> bytes:
        """Take the complete chunks off `buf`; at the last chunk (and its trailers) end the body."""
        buf, pos = self.buf, 0
        out: list[bytes] = []
        while (eol := buf.find(b"\r\n", pos)) >= 0:
            size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
            if size == 0:
                end = buf.find(b"\r\n\r\n", eol)  # no trailers: the size line's CRLF + an empty line
                if end < 0:
                    break
                if len(buf) > end + 4:  # bytes after the response: the connection is out of step
                    self.keep_alive = False
                del buf[:]
                self.chunked, self.left = False, 0
                return b"".join(out)
            if len(buf) < eol + 2 + size + 2:
                break
            out.append(bytes(buf[eol + 2 : eol + 2 + size]))
            pos = eol + 2 + size + 2
        del buf[:pos]
        return b"".join(out)

    def finished(self) -> bool:
        return self.left == 0


class _LeanPool:
    """Keep-alive connections for the streaming POST to a plain-http engine without a proxy.

    httpx costs the router about as much CPU per request as everything else in Python together
    (its layers, anyio, a per-read cancel scope); this is the few lines of HTTP/1.1 the stream needs.
    Health checks and model discovery stay on httpx."""

    def __init__(self, host: str, port: int, connect_s: float, timeout_s: float, max_connections: int) -> None:
        self._host, self._port = host, port
        self._connect_s, self._timeout_s = connect_s, timeout_s
        self._idle: list[_Conn] = []
        self._draining: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max_connections)

    @staticmethod
    def for_url(base: str, connect_s: float, timeout_s: float, max_connections: int) -> _LeanPool | None:
        """A pool for `base`, or None where httpx must handle it (https, a proxy, credentials, a query)."""
        url = urlsplit(base)
        if url.scheme != "http" or not url.hostname or url.username or url.query or url.fragment:
            return None
        proxies = urllib.request.getproxies()
        if ("http" in proxies or "all" in proxies) and not urllib.request.proxy_bypass(url.hostname):
            return None
        return _LeanPool(url.hostname, url.port or 80, connect_s, timeout_s, max_connections)

    async def open(self, request: bytes) -> _Conn:
        """Send `request` on an idle connection (a fresh one if none) and read the response head.

        A reused connection that fails before any response arrives (the server closed it while idle)
        is replaced once by a fresh one; the server never saw that request."""
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._slots.acquire()
        except TimeoutError:
            raise _Timeout("PoolTimeout") from None
        try:
            while self._idle:
                conn = self._idle.pop()
                if not conn.usable():
                    conn.close()
                    continue
                try:
                    await self._exchange(conn, request)
                    return conn
                except (OSError, asyncio.IncompleteReadError) as exc:
                    conn.close()
                    if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                        raise  # the server answered something: it saw the request
                    break  # closed while idle: once more on a fresh connection
                except BaseException:
                    conn.close()
                    raise
            try:
                async with asyncio.timeout(self._connect_s):
                    reader, writer = await asyncio.open_connection(self._host, self._port, limit=1 << 20)
            except TimeoutError:
                raise _Timeout("ConnectTimeout") from None
            conn = _Conn(reader, writer)
            try:
                await self._exchange(conn, request)
            except BaseException:
                conn.close()
                raise
            return conn
        except BaseException:
            self._slots.release()
            raise

    async def _exchange(self, conn: _Conn, request: bytes) -> None:
        conn.writer.write(request)
        try:
            async with asyncio.timeout(self._timeout_s):
                await conn.writer.drain()
                await conn.response_head()
        except TimeoutError:
            raise _Timeout("ReadTimeout") from None

    def finish(self, conn: _Conn) -> None:
        """The caller has the whole answer (`[DONE]`): read what is left of the body (normally just
        the chunked terminator, right behind it) in the background, then keep or close `conn`."""
        if conn.finished():
            self.release(conn)
            return
        task = asyncio.get_running_loop().create_task(self._drain(conn))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def _drain(self, conn: _Conn) -> None:
        try:
            async with asyncio.timeout(_DRAIN_S):
                while await conn.read():
                    pass
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # not reusable: `release` closes it
        finally:
            self.release(conn)

    def release(self, conn: _Conn) -> None:
        """Keep `conn` for the next request if its response was read to the end, else close it."""
        if conn.keep_alive and conn.finished() and conn.usable():
            self._idle.append(conn)
        else:
            conn.close()
        self._slots.release()

    def close(self) -> None:
        for task in self._draining:
            task.cancel()
        for conn in self._idle:
            conn.close()
        self._idle.clear()


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
        self._lean = _LeanPool.for_url(self._base, connect_timeout_s, read_timeout_s, max_connections)
        if self._lean is not None:
            url = urlsplit(self._base)
            host = f"[{url.hostname}]" if ":" in (url.hostname or "") else str(url.hostname)
            host = host if url.port is None else f"{host}:{url.port}"
            auth = f"Authorization: Bearer {api_key}\r\n" if api_key else ""
            self._head = (
                f"POST {url.path}/v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n"
                f"Connection: keep-alive\r\nContent-Type: application/json\r\n{auth}"
            )
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

    def _transport_error(self, exc: Exception) -> EngineError:
        """A connection-level failure: a timeout, or the engine unreachable / the stream broken."""
        if isinstance(exc, httpx.TimeoutException):
            return EngineTimeout(f"{self._base}: {type(exc).__name__}")
        return EngineUnavailable(f"{self._base}: {type(exc).__name__}: {exc}")

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
        if self._lean is None:
            async with aclosing(self._generate_httpx(request)) as events:
                async for event in events:
                    yield event
            return
        engine_rid = self._engine_rid()
        body = json.dumps(self.payload(request, engine_rid), ensure_ascii=False, separators=(",", ":")).encode()
        rid = request.request_id
        head = self._head + (f"X-Request-Id: {rid}\r\n" if rid and _safe_header(rid) else "")
        head += "".join(f"{k}: {v}\r\n" for k, v in request.trace_headers if _safe_header(v))
        data = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        try:
            conn = await self._lean.open(data)
        except _Timeout as exc:
            raise EngineTimeout(f"{self._base}: {exc}") from exc
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, _Malformed, ValueError) as exc:
            raise EngineUnavailable(f"{self._base}: {type(exc).__name__}: {exc}") from exc
        stream = _SSE(self._base)
        try:
            if conn.status != 200:
                raise _status_error(conn.status, await self._read_all(conn))
            while chunk := await self._read(conn):
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
                self._lean.finish(conn)  # the rest (the chunked terminator) is read in the background
            else:
                # Releasing a response not read to its end closes its connection, synchronously (no
                # await a second cancellation could skip): that is what makes the engine abort it.
                self._lean.release(conn)
                self._abort(engine_rid)
        yield Finished(finish_reason=stream.finish_reason, usage=stream.usage, model=self._model)

    async def _read(self, conn: _Conn) -> bytes:
        try:
            async with asyncio.timeout(self._read_timeout_s):
                return await conn.read()
        except TimeoutError as exc:
            raise EngineTimeout(f"{self._base}: ReadTimeout") from exc
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise EngineUnavailable(f"{self._base}: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:  # a chunk size that is not hex
            raise EngineUnavailable(f"{self._base}: malformed stream: {exc}") from exc

    async def _read_all(self, conn: _Conn) -> bytes:
        parts = []
        while part := await self._read(conn):
            parts.append(part)
        return b"".join(parts)

    async def _generate_httpx(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        headers = {"X-Request-Id": request.request_id} if request.request_id else {}
        headers.update(request.trace_headers)
        engine_rid = self._engine_rid()
        request_ = self._client.build_request(
            "POST", "/v1/chat/completions", json=self.payload(request, engine_rid), headers=headers
        )
        try:
            resp = await self._client.send(request_, stream=True)
        except httpx.TransportError as exc:  # timeouts included
            raise self._transport_error(exc) from exc
        stream = _SSE(self._base)
        try:
            if resp.status_code != 200:
                raise _status_error(resp.status_code, await resp.aread())
            async for chunk in resp.aiter_bytes():
                if texts := stream.feed(chunk):
                    yield Delta("".join(texts), stream.tokens(len(texts)))
                if stream.error:
                    raise stream.error
                if stream.done:
                    break
            else:
                for text in stream.feed(b"\n"):
                    yield Delta(text)
                if stream.error:
                    raise stream.error
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise self._transport_error(exc) from exc
        finally:
            # Closing the unfinished response closes its connection: that is what makes the engine
            # abort the request. Shielded, so a second cancellation during cleanup cannot skip it.
            if not stream.done:
                self._abort(engine_rid)
            await asyncio.shield(resp.aclose())
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
        if self._lean is not None:
            self._lean.close()
        await self._client.aclose()
