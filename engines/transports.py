"""How the engine clients stream a chat completion: one `Transport` protocol, two implementations.

`AiohttpTransport` (aiohttp, a maintained client, traced by opentelemetry-instrumentation-aiohttp-client)
and `LeanTransport` (the few lines of HTTP/1.1 the stream needs, for plain-http engines without a
proxy). `pools.<name>.http_client` picks one; lean is the default because aiohttp added 2.2x its
latency at 1 stream and 1.6x at 16 in front of vLLM on an H200 (4.00 vs 1.82 ms, 20.6 vs 12.5 ms added
p50; bench.overhead, docs/benchmarks.md), far over the 5 % a maintained client was allowed. Each maps its failures to
EngineTimeout / EngineUnavailable, so the one streaming loop in engines/openai_http.py does not
know which it runs on."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Mapping
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from engines.errors import EngineTimeout, EngineUnavailable

HttpClient = Literal["aiohttp", "lean"]


class Response(Protocol):
    """A streaming response: its status, then the body piece by piece."""

    status: int

    async def read(self) -> bytes:
        """The next piece of the body (b"" at its end); a broken or silent stream raises an EngineError."""
        ...

    def done(self) -> None:
        """The answer is whole: keep the connection for the next request (the rest is read in the background)."""
        ...

    def abort(self) -> None:
        """Close the connection now, synchronously (cancellation-proof): the engine stops generating."""
        ...


class Transport(Protocol):
    """Keep-alive connections to one engine server for the streaming POST."""

    async def open(self, body: bytes, headers: Mapping[str, str]) -> Response:
        """POST `body` (JSON) to /v1/chat/completions and read the response head."""
        ...

    async def close(self) -> None: ...


def transport(
    kind: HttpClient, base: str, *, connect_s: float, read_s: float, max_connections: int, api_key: str
) -> Transport:
    """The configured transport for `base`; `lean` falls back to aiohttp where it cannot go (https, a proxy)."""
    if kind == "lean":
        lean = LeanTransport.for_url(base, connect_s, read_s, max_connections, api_key)
        if lean is not None:
            return lean
    return AiohttpTransport(base, connect_s, read_s, max_connections, api_key)


class AiohttpTransport:
    """aiohttp's client, with its OpenTelemetry instrumentation: a CLIENT span per request, whose
    context goes out as `traceparent` (a child of the context current when `open` is called)."""

    def __init__(self, base: str, connect_s: float, read_s: float, max_connections: int, api_key: str) -> None:
        self._url = base.rstrip("/") + "/v1/chat/completions"
        self._connect_s, self._read_s, self._max = connect_s, read_s, max_connections
        self._headers = {"Content-Type": "application/json"} | (
            {"Authorization": f"Bearer {api_key}"} if api_key else {}
        )
        self._session: Any = None  # made on first use: an aiohttp session belongs to a running loop
        self._draining: set[asyncio.Task[None]] = set()

    def _client(self) -> Any:
        if self._session is None:
            import aiohttp
            from opentelemetry.instrumentation.aiohttp_client import create_trace_config

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max, keepalive_timeout=2.0),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_s, sock_read=self._read_s),
                headers=self._headers,
                trust_env=True,  # HTTP(S)_PROXY / NO_PROXY, as httpx did
                trace_configs=[create_trace_config()],
            )
        return self._session

    async def open(self, body: bytes, headers: Mapping[str, str]) -> Response:
        import aiohttp

        try:
            resp = await self._client().post(self._url, data=body, headers=dict(headers))
        except TimeoutError as exc:  # aiohttp's ServerTimeoutError / ConnectionTimeoutError are TimeoutErrors
            raise EngineTimeout(f"{self._url}: {type(exc).__name__}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise EngineUnavailable(f"{self._url}: {type(exc).__name__}: {exc}") from exc
        return _AiohttpResponse(resp, self._url, self._draining)

    async def close(self) -> None:
        for task in self._draining:
            task.cancel()
        if self._session is not None:
            await self._session.close()


class _AiohttpResponse:
    __slots__ = ("_draining", "_resp", "_url", "status")

    def __init__(self, resp: Any, url: str, draining: set[asyncio.Task[None]]) -> None:
        self._resp, self._url, self._draining = resp, url, draining
        self.status = int(resp.status)

    async def read(self) -> bytes:
        import aiohttp

        try:
            return bytes(await self._resp.content.readany())
        except TimeoutError as exc:
            raise EngineTimeout(f"{self._url}: ReadTimeout") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise EngineUnavailable(f"{self._url}: {type(exc).__name__}: {exc}") from exc

    def done(self) -> None:
        task = asyncio.get_running_loop().create_task(self._drain())
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def _drain(self) -> None:
        try:
            async with asyncio.timeout(_DRAIN_S):
                await self._resp.read()  # the chunked terminator behind [DONE]: then the connection is reusable
        except Exception:
            pass
        finally:
            self._resp.release()

    def abort(self) -> None:
        self._resp.close()


class LeanTransport:
    """`_LeanPool` behind the `Transport` protocol (plain http, no proxy)."""

    def __init__(self, pool: _LeanPool, head: str) -> None:
        self._pool, self._head = pool, head

    @staticmethod
    def for_url(base: str, connect_s: float, read_s: float, max_connections: int, api_key: str) -> LeanTransport | None:
        pool = _LeanPool.for_url(base, connect_s, read_s, max_connections)
        if pool is None:
            return None
        url = urlsplit(base)
        host = f"[{url.hostname}]" if ":" in (url.hostname or "") else str(url.hostname)
        host = host if url.port is None else f"{host}:{url.port}"
        auth = f"Authorization: Bearer {api_key}\r\n" if api_key else ""
        head = (
            f"POST {url.path.rstrip('/')}/v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n"
            f"Connection: keep-alive\r\nContent-Type: application/json\r\n{auth}"
        )
        return LeanTransport(pool, head)

    async def open(self, body: bytes, headers: Mapping[str, str]) -> Response:
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if _safe_header(k) and _safe_header(v))
        data = f"{self._head}{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body
        base = self._pool.base
        try:
            conn = await self._pool.open(data)
        except _Timeout as exc:
            raise EngineTimeout(f"{base}: {exc}") from exc
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, _Malformed, ValueError) as exc:
            raise EngineUnavailable(f"{base}: {type(exc).__name__}: {exc}") from exc
        return _LeanResponse(self._pool, conn)

    async def close(self) -> None:
        self._pool.close()


class _LeanResponse:
    __slots__ = ("_conn", "_pool", "status")

    def __init__(self, pool: _LeanPool, conn: _Conn) -> None:
        self._pool, self._conn = pool, conn
        self.status = conn.status

    async def read(self) -> bytes:
        base = self._pool.base
        try:
            async with asyncio.timeout(self._pool.timeout_s):
                return await self._conn.read()
        except TimeoutError as exc:
            raise EngineTimeout(f"{base}: ReadTimeout") from exc
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise EngineUnavailable(f"{base}: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:  # a chunk size that is not hex
            raise EngineUnavailable(f"{base}: malformed stream: {exc}") from exc

    def done(self) -> None:
        self._pool.finish(self._conn)  # the rest (the chunked terminator) is read in the background

    def abort(self) -> None:
        # Releasing a response not read to its end closes its connection, synchronously.
        self._pool.release(self._conn)


def _safe_header(value: str) -> bool:
    return value.isprintable() and value.isascii()


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

    def __init__(
        self, base: str, host: str, port: int, connect_s: float, timeout_s: float, max_connections: int
    ) -> None:
        self.base = base.rstrip("/")  # as configured: errors name it
        self.timeout_s = timeout_s
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
        return _LeanPool(base, url.hostname, url.port or 80, connect_s, timeout_s, max_connections)

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
