"""The detection process's server: one ensemble (models, batcher, cache) fed over a Unix socket by
every router process on the host, so their images share batches and one cache.

Ops (detectors.wire frames): "detect" (digest, picture) -> (Detection, batch sizes); "many"
(pictures, digests) -> ([Detection | UndecodableImage], [batch sizes]); "info" -> what runs here.
A JPEG arrives undecoded (`EncodedJpeg`); for runners that do not decode JPEGs themselves it is
decoded here once, on a worker thread, before it is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from typing import Any

from detectors.base import Detection, EncodedJpeg, Picture, UndecodableImage, rgb
from detectors.ensemble import Ensemble
from detectors.wire import WireError, frame, read_frame

log = logging.getLogger(__name__)


class DetectionServer:
    """Serves `ensemble` (warmed up) on the Unix socket `path`."""

    def __init__(self, ensemble: Ensemble, path: str) -> None:
        self.ensemble = ensemble
        self.path = path
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen (replacing a socket file a dead server left behind); only this user may connect."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._server = await asyncio.start_unix_server(self._serve, self.path)
        os.chmod(self.path, 0o600)

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection: each request answered as soon as it is done, in any order."""
        tasks: dict[int, asyncio.Task[None]] = {}
        try:
            while (message := await read_frame(reader)) is not None:
                rid, op, args = message
                if op == "cancel":  # its caller gave up: work not started yet is dropped
                    if (task := tasks.get(args[0])) is not None:
                        task.cancel()
                    continue
                task = asyncio.create_task(self._answer(writer, rid, op, args))
                tasks[rid] = task
                task.add_done_callback(functools.partial(_forget, tasks, rid))
        except (WireError, ConnectionError) as exc:
            log.warning("detection client connection dropped: %s", exc)
        finally:
            for task in list(tasks.values()):
                task.cancel()
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, rid: int, op: str, args: tuple[Any, ...]) -> None:
        try:
            reply = (rid, True, await self._run(op, args))
        except asyncio.CancelledError:
            return
        except Exception as exc:  # the caller's own error (UndecodableImage), or a bug it should hear of
            reply = (rid, False, exc)
        try:
            data = frame(reply)
        except Exception as exc:  # an exception that does not pickle
            data = frame((rid, False, RuntimeError(repr(reply[2] if not reply[1] else exc))))
        if not writer.is_closing():
            writer.write(data)
            with contextlib.suppress(ConnectionError):  # the router process went: nobody waits for it
                await writer.drain()

    async def _run(self, op: str, args: tuple[Any, ...]) -> Any:
        ens = self.ensemble
        if op == "detect":
            digest, picture = args
            cached = ens.lookup(digest)
            if cached is None:
                cached = await ens.detect(await self._decoded(picture), b"", digest)
            return cached, ens.batch_sizes(digest)
        if op == "many":
            return await self._many(*args)
        if op == "info":
            return {
                "pid": os.getpid(),
                "members": [(m.name, getattr(getattr(m, "spec", None), "device", "?")) for m in ens.members],
                "decodes_jpeg": ens.decodes_jpeg,
                "workers": [(w.batches, w.items) for w in ens.workers],
                "ready": ens.ready,
            }
        raise ValueError(f"unknown detection op {op!r}")

    async def _decoded(self, picture: Picture) -> Picture:
        """The picture as the runners take it: a JPEG decoded here unless they decode JPEGs themselves."""
        if isinstance(picture, EncodedJpeg) and not self.ensemble.decodes_jpeg:
            return await asyncio.to_thread(rgb, picture)
        return picture

    async def _many(
        self, pictures: list[Picture], digests: list[str]
    ) -> tuple[list[Detection | UndecodableImage], list[dict[str, int]]]:
        ens = self.ensemble
        ready: list[Picture | UndecodableImage] = list(pictures)
        if not ens.decodes_jpeg:
            ready = await asyncio.to_thread(_decode_all, pictures, [ens.cache.peek(d) is not None for d in digests])
        ok = [(p, d) for p, d in zip(ready, digests, strict=True) if not isinstance(p, UndecodableImage)]
        found = iter(await ens.detect_many([p for p, _ in ok], [d for _, d in ok]))
        results = [p if isinstance(p, UndecodableImage) else next(found) for p in ready]
        return results, [ens.batch_sizes(d) for d in digests]


def _forget(tasks: dict[int, asyncio.Task[None]], rid: int, _: object) -> None:
    tasks.pop(rid, None)


def _decode_all(pictures: list[Picture], cached: list[bool]) -> list[Picture | UndecodableImage]:
    """Each JPEG decoded (or why it could not be), but not those already detected."""
    out: list[Picture | UndecodableImage] = []
    for p, hit in zip(pictures, cached, strict=True):
        if hit or not isinstance(p, EncodedJpeg):
            out.append(p)
            continue
        try:
            out.append(rgb(p))
        except UndecodableImage as exc:
            out.append(exc)
    return out
