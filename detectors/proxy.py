"""A router process's side of the shared detection process: what the router uses of an `Ensemble`,
answered by the detection process (detectors.server) over its Unix socket.

JPEGs go undecoded (`decodes_jpeg` is True: the router checks only their header); other formats
as the pixels the router decoded. Detections this process received are kept in a local LRU too,
so a repeated image costs no round trip. When the detection process cannot be reached (it died
and is being restarted), every call in flight, and every call until it is back, raises
`DetectionLost`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from typing import Any

from detectors.base import Detection, Picture, UndecodableImage
from detectors.ensemble import Remembered, whole
from detectors.wire import frame, read_frame


class DetectionLost(ConnectionError):
    """The shared detection process cannot be reached (it exited, or is starting again)."""


class _Link:
    """One connection to the detection process, its calls in flight by id."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.closed = False
        self.task = asyncio.create_task(self._read(), name="detection-link")

    async def _read(self) -> None:
        why = "the detection process closed the connection (it exited?)"
        try:
            while (message := await read_frame(self.reader)) is not None:
                rid, ok, value = message
                future = self.pending.pop(rid, None)
                if future is not None and not future.done():
                    future.set_result(value) if ok else future.set_exception(value)
        except Exception as exc:  # a broken stream (WireError, ConnectionError), or a reply that does not load
            why = f"the connection to the detection process broke: {exc!r}"
        finally:
            self.fail(why)

    def fail(self, why: str) -> None:
        """Mark the link dead; every call in flight raises DetectionLost."""
        self.closed = True
        for future in self.pending.values():
            if not future.done():
                future.set_exception(DetectionLost(why))
        self.pending.clear()
        self.writer.close()


class EnsembleProxy(Remembered):
    """The shared detection process, seen as the router's detection stage; what it answered is
    remembered here too (`lookup`, `batch_sizes`)."""

    decodes_jpeg = True  # JPEGs travel as bytes: the detection process decodes them (on its GPU)

    def __init__(self, path: str, *, cache_size: int = 4096) -> None:
        super().__init__(cache_size)
        self.path = path
        self._link: _Link | None = None
        self._connecting = asyncio.Lock()
        self._ids = itertools.count()
        self.ready = False

    async def _connected(self) -> _Link:
        if self._link is not None and not self._link.closed:
            return self._link
        async with self._connecting:
            if self._link is None or self._link.closed:
                try:
                    reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(self.path), 5.0)
                except (OSError, TimeoutError) as exc:
                    raise DetectionLost(
                        f"the detection process (socket {self.path}) cannot be reached: {exc}; it is restarted "
                        "when it exits, retry shortly"
                    ) from exc
                self._link = _Link(reader, writer)
            return self._link

    async def call(self, op: str, *args: Any) -> Any:
        """One request to the detection process and its reply (its exception re-raised here)."""
        link = await self._connected()
        rid = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        link.pending[rid] = future
        link.writer.write(frame((rid, op, args)))
        try:
            await link.writer.drain()
            return await future
        except ConnectionError as exc:
            if isinstance(exc, DetectionLost):
                raise
            link.fail(f"the connection to the detection process broke: {exc}")
            raise DetectionLost(f"the connection to the detection process broke: {exc}") from exc
        except asyncio.CancelledError:
            if link.pending.pop(rid, None) is not None and not link.closed:
                link.writer.write(frame((next(self._ids), "cancel", (rid,))))
            raise

    async def warmup(self, timeout_s: float = 600.0) -> None:
        """Wait until the detection process answers (it listens once its models are warmed up)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                await self.call("info")
                break
            except DetectionLost:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.2)
        self.ready = True

    def _keep(self, digest: str, result: Detection, batches: dict[str, int]) -> None:
        self._batches.put(digest, batches)
        if whole(result):  # what the detection process's own cache keeps
            self._cache.put(digest, result)

    async def detect(self, image: Picture, data: bytes, digest: str | None = None) -> Detection:
        """Detection for one image; UndecodableImage when it could not be decoded."""
        digest = digest or hashlib.sha256(data).hexdigest()
        result, batches = await self.call("detect", digest, image)
        self._keep(digest, result, batches)
        return result  # type: ignore[no-any-return]

    async def detect_many(self, images: list[Picture], digests: list[str]) -> list[Detection | UndecodableImage]:
        """Detection for a bulk job's images, sent as one request (detected there in whole batches)."""
        results, batches = await self.call("many", images, digests)
        for d, r, b in zip(digests, results, batches, strict=True):
            if isinstance(r, Detection):
                self._keep(d, r, b)
        return results  # type: ignore[no-any-return]

    async def info(self) -> dict[str, Any]:
        """What runs in the detection process: its pid, members, batch counters."""
        return await self.call("info")  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._link is not None and not self._link.closed:
            self._link.fail("the router is stopping")


async def reachable(path: str, timeout_s: float = 2.0) -> bool:
    """Whether a detection process answers on `path` now."""
    proxy = EnsembleProxy(path, cache_size=0)
    try:
        await asyncio.wait_for(proxy.call("info"), timeout_s)
        return True
    except (DetectionLost, TimeoutError):
        return False
    finally:
        proxy.close()
