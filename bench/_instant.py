"""An instant OpenAI-compatible streaming server, for measuring the router's own request rate.

python -m bench._instant --port 8100 [--processes 4] [--tokens 16]

It answers every chat completion with `max_tokens` one-word deltas, a usage chunk and `[DONE]`
(HTTP/1.1 keep-alive, chunked SSE), at once or --gap-ms apart, so no engine limits what a router in
front of it can serve. It is a benchmark load sink, not an engine: nothing in the test suite uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket

_MODELS = json.dumps({"object": "list", "data": [{"id": "instant", "object": "model"}]}).encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _sse(tokens: int) -> list[bytes]:
    """The streamed body's chunks, precomputed per max_tokens."""
    out = []
    for i in range(tokens):
        delta = {"id": "x", "object": "chat.completion.chunk", "model": "instant",
                 "choices": [{"index": 0, "delta": {"content": f" w{i}"}, "finish_reason": None}]}  # fmt: skip
        out.append(_chunk(b"data: " + json.dumps(delta).encode() + b"\n\n"))
    usage = {"id": "x", "object": "chat.completion.chunk", "model": "instant",
             "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
             "usage": {"prompt_tokens": 64, "completion_tokens": tokens, "total_tokens": 64 + tokens}}  # fmt: skip
    out.append(_chunk(b"data: " + json.dumps(usage).encode() + b"\n\n"))
    out.append(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    return out


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tokens_: int, gap_s: float) -> None:
    bodies: dict[int, list[bytes]] = {}
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            if method == "POST" and path.endswith("/chat/completions"):
                tokens = int(json.loads(body).get("max_tokens") or tokens_)
                if tokens not in bodies:
                    bodies[tokens] = _sse(tokens)
                head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                if not gap_s:
                    writer.write(head + b"".join(bodies[tokens]))
                else:  # one chunk per token gap, like an engine decoding
                    writer.write(head)
                    for chunk in bodies[tokens]:
                        await asyncio.sleep(gap_s)
                        writer.write(chunk)
            else:
                payload = _MODELS if path.endswith("/models") else b""
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                             % (len(payload), payload))  # fmt: skip
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _serve(port: int, tokens: int, gap_s: float) -> None:
    async def main() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        server = await asyncio.start_server(lambda r, w: _handle(r, w, tokens, gap_s), sock=sock, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--tokens", type=int, default=16, help="deltas when a request sets no max_tokens")
    p.add_argument("--gap-ms", type=float, default=0.0, help="pause before each chunk (0: the whole answer at once)")
    args = p.parse_args()
    serve = (args.port, args.tokens, args.gap_ms / 1e3)
    procs = [multiprocessing.Process(target=_serve, args=serve) for _ in range(args.processes)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()


if __name__ == "__main__":
    main()
