"""The engine stream's HTTP clients (aiohttp and the lean HTTP/1.1 one, each test on both) against
scripted servers on loopback: what arrives on the wire when a server misbehaves (a real vLLM covers
the normal path in test_openai_http_vllm.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from engines.base import Delta, Finished, GenerationEvent, GenerationRequest, Message
from engines.errors import EngineBadRequest, EngineUnavailable
from engines.openai_http import OpenAIHTTPEngine

REQ = GenerationRequest(messages=(Message("user", "hi"),), max_tokens=4, temperature=0.0)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
pytestmark = pytest.mark.usefixtures("http_client")


def _chunk(payload: dict[str, object] | str) -> bytes:
    data = b"data: " + (payload if isinstance(payload, str) else json.dumps(payload)).encode() + b"\n\n"
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _delta(text: str) -> bytes:
    return _chunk({"choices": [{"delta": {"content": text}}]})


HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    await reader.readexactly(length)


async def _serve(handler: Handler) -> tuple[asyncio.Server, str, list[int]]:
    accepted: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", accepted


async def _collect(engine: OpenAIHTTPEngine) -> list[GenerationEvent]:
    return [event async for event in engine.generate(REQ)]


async def test_a_truncated_stream_is_unavailable_after_the_text_it_carried() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(HEAD + _delta("a") + _delta("b"))
        await writer.drain()  # then the connection closes without the rest of the body

    server, url, _ = await _serve(handler)
    engine = OpenAIHTTPEngine(url, "m")
    got: list[str] = []
    with pytest.raises(EngineUnavailable, match=r"127\.0\.0\.1"):
        async for event in engine.generate(REQ):
            assert isinstance(event, Delta)
            got.append(event.text)
    assert got == ["ab"]  # both arrived in one read: one delta
    await engine.close()
    server.close()


async def test_chunk_framing_split_anywhere_parses_the_same() -> None:
    """A body cut at every byte (chunk extensions, trailers included): the same answer, and the
    connection is reused for the next one; deltas that arrive apart stay apart."""
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    sse = b"data: " + json.dumps({"choices": [{"delta": {"content": "héllo"}}]}, ensure_ascii=False).encode() + b"\n\n"
    first_chunk = f"{len(sse):x};e=1\r\n".encode() + sse + b"\r\n"  # with a chunk extension; é is 2 bytes
    body = (first_chunk + _delta(" world") + _chunk({"choices": [], "usage": usage}) + _chunk("[DONE]")
            + b"0\r\nX-Trailer: 1\r\n\r\n")  # fmt: skip

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        for i in range(len(HEAD + body)):  # one byte per write
            writer.write((HEAD + body)[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0)
        await _read_request(reader)
        writer.write(HEAD + _delta("a"))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(_delta("b") + _chunk("[DONE]") + b"0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)

    server, url, accepted = await _serve(handler)
    engine = OpenAIHTTPEngine(url, "m")
    first = await _collect(engine)
    assert "".join(e.text for e in first if isinstance(e, Delta)) == "héllo world"
    done = first[-1]
    assert isinstance(done, Finished) and done.usage.completion_tokens == 2
    await asyncio.sleep(0.1)  # the trailers are read in the background before the connection is free
    second = await _collect(engine)
    assert [e.text for e in second if isinstance(e, Delta)] == ["a", "b"]
    assert len(accepted) == 1
    await engine.close()
    server.close()


async def test_answers_reuse_one_keep_alive_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await _read_request(reader)
            except asyncio.IncompleteReadError:
                return
            usage = {"prompt_tokens": 3, "completion_tokens": 1}
            writer.write(HEAD + _delta("x") + _chunk({"choices": [], "usage": usage}) + _chunk("[DONE]") + b"0\r\n\r\n")
            await writer.drain()

    server, url, accepted = await _serve(handler)
    engine = OpenAIHTTPEngine(url, "m")
    for _ in range(3):
        events = await _collect(engine)
        assert isinstance(events[-1], Finished) and events[-1].usage.prompt_tokens == 3
        await asyncio.sleep(0.05)  # the chunked terminator is read in the background
    assert len(accepted) == 1, "one TCP connection for three answers"
    await engine.close()
    server.close()


async def test_a_client_error_keeps_the_servers_message() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        body = json.dumps({"error": {"message": "prompt is longer than the context (5000 > 4096)"}}).encode()
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                     + f"content-length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
        await writer.drain()

    server, url, _ = await _serve(handler)
    engine = OpenAIHTTPEngine(url, "m")
    with pytest.raises(EngineBadRequest, match="longer than the context"):
        await _collect(engine)
    await engine.close()
    server.close()


async def test_closing_a_stream_early_closes_its_connection() -> None:
    """What makes the engine abort a generation the client no longer wants."""
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(HEAD)
        for i in range(1000):
            writer.write(_delta(str(i)))
            await writer.drain()
            await asyncio.sleep(0.01)
            if reader.at_eof() or writer.transport.is_closing():
                break
        closed.set()

    server, url, _ = await _serve(handler)
    engine = OpenAIHTTPEngine(url, "m")
    stream = engine.generate(REQ)
    assert isinstance(await anext(stream), Delta)
    await stream.aclose()
    await asyncio.wait_for(closed.wait(), 5)
    await engine.close()
    server.close()


def _abort_recorder(bodies: list[dict[str, object]], aborts: list[dict[str, object]], deltas: int) -> Handler:
    """A server that streams `deltas` deltas then [DONE] to /v1/chat/completions, and records each
    /abort_request body (as SGLang's endpoint takes it)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
            body = json.loads(await reader.readexactly(length))
            if head.startswith(b"POST /abort_request"):
                aborts.append(body)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
                continue
            bodies.append(body)
            writer.write(HEAD)
            for i in range(deltas):
                writer.write(_delta(str(i)))
                await writer.drain()
                await asyncio.sleep(0.01)
                if writer.transport.is_closing():
                    return
            writer.write(_chunk("[DONE]") + b"0\r\n\r\n")
            await writer.drain()

    return handler


async def test_a_stream_left_early_is_aborted_by_its_request_id() -> None:
    """SGLang stops a left stream only 2 s after its response ends: the engine is told by id at once."""
    bodies: list[dict[str, object]] = []
    aborts: list[dict[str, object]] = []
    server, url, _ = await _serve(_abort_recorder(bodies, aborts, 1000))
    engine = OpenAIHTTPEngine(url, "m", abort_path="/abort_request")
    stream = engine.generate(REQ)
    assert isinstance(await anext(stream), Delta)
    await stream.aclose()
    await engine.close()  # waits for the abort already sent
    server.close()
    rid = bodies[0]["rid"]
    assert isinstance(rid, str) and len(rid) == 32
    assert aborts == [{"rid": rid}]


async def test_a_finished_stream_sends_no_abort_and_each_request_has_its_own_id() -> None:
    bodies: list[dict[str, object]] = []
    aborts: list[dict[str, object]] = []
    server, url, _ = await _serve(_abort_recorder(bodies, aborts, 3))
    engine = OpenAIHTTPEngine(url, "m", abort_path="/abort_request")
    for _ in range(2):
        events = await _collect(engine)
        assert [e.text for e in events if isinstance(e, Delta)] == ["0", "1", "2"]
        assert isinstance(events[-1], Finished)
    await engine.close()
    server.close()
    assert aborts == [] and len({b["rid"] for b in bodies}) == 2


async def test_without_an_abort_path_no_request_id_is_sent() -> None:
    bodies: list[dict[str, object]] = []
    server, url, _ = await _serve(_abort_recorder(bodies, [], 2))
    engine = OpenAIHTTPEngine(url, "m")
    await _collect(engine)
    await engine.close()
    server.close()
    assert "rid" not in bodies[0]
