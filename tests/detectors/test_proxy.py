"""The shared detection process's server and proxy on a real Unix socket, with real models on the
CPU: the same detections as the ensemble in-process, batches merged across connections, a corrupt
image failing only its own request, calls in flight failing when the server goes."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from detectors.base import EncodedJpeg, Picture, UndecodableImage
from detectors.ensemble import Ensemble
from detectors.proxy import DetectionLost, EnsembleProxy
from detectors.server import DetectionServer
from tests.detectors.test_ensemble import SAMPLE, _member


def _jpeg(seed: int) -> bytes:
    """A distinct 320x240 JPEG (the sample, shifted)."""
    img = Image.open(SAMPLE).convert("RGB").resize((320, 240)).rotate(seed * 7)
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    return buf.getvalue()


def _encoded(data: bytes) -> EncodedJpeg:
    return EncodedJpeg(data, Image.open(io.BytesIO(data)).size)


def _corrupt() -> bytes:
    """A JPEG whose header reads and whose end marker is there, with no pixels between."""
    return _jpeg(0)[:200] + b"\xff\xd9"


def _ensemble() -> Ensemble:
    return Ensemble.solo([_member("a", conf=0.0001), _member("b", conf=0.0001, weights="roadwork-yolov8n.yaml")],
                         deadline_s=60, cache_size=64)  # fmt: skip


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[DetectionServer, str]]:
    ensemble = _ensemble()
    await ensemble.warmup()
    path = str(tmp_path_factory.mktemp("socket") / "detection.sock")
    server = DetectionServer(ensemble, path)
    await server.start()
    yield server, path
    ensemble.close()


async def test_proxy_returns_the_ensembles_detections(served: tuple[DetectionServer, str]) -> None:
    """A JPEG (sent undecoded, decoded over there) and a PNG's pixels: the same boxes and votes as
    an ensemble in this process; the repeat comes from the proxy's own cache."""
    local = _ensemble()
    await local.warmup()
    proxy = EnsembleProxy(served[1], cache_size=8)
    await proxy.warmup(10)
    try:
        jpeg = _jpeg(1)
        png_img = Image.open(io.BytesIO(_jpeg(2))).convert("RGB")
        cases: list[tuple[Picture, Image.Image, bytes]] = [
            (_encoded(jpeg), Image.open(io.BytesIO(jpeg)).convert("RGB"), jpeg),
            (png_img, png_img, png_img.tobytes()),
        ]
        for remote_picture, pixels, data in cases:
            digest = hashlib.sha256(data).hexdigest()
            got, want = await proxy.detect(remote_picture, data, digest), await local.detect(pixels, data, digest)
            assert [(v.detector, v.status, v.boxes) for v in got.votes] == [
                (v.detector, v.status, v.boxes) for v in want.votes
            ]
            assert got.probability == want.probability and (got.width, got.height) == (want.width, want.height)
            assert all(v.latency_ms > 0 for v in got.votes) and set(proxy.batch_sizes(digest)) == {"a", "b"}
            assert proxy.cache.peek(digest) is not None and proxy.lookup(digest).cached  # type: ignore[union-attr]
    finally:
        proxy.close()
        local.close()


async def test_batches_merge_across_connections(served: tuple[DetectionServer, str]) -> None:
    """Two router processes' connections: images queued while a batch runs ride the next one together."""
    server, path = served
    first, second = EnsembleProxy(path), EnsembleProxy(path)
    release = threading.Event()
    hold = [asyncio.wrap_future(w.call(release.wait)) for w in server.ensemble.workers]  # busy detectors
    try:
        datas = [_jpeg(10 + i) for i in range(4)]
        calls = [
            (first if i % 2 else second).detect(_encoded(d), d, hashlib.sha256(d).hexdigest())
            for i, d in enumerate(datas)
        ]
        tasks = [asyncio.ensure_future(c) for c in calls]
        await asyncio.sleep(0.5)  # every request reached the detectors' queues
        release.set()
        await asyncio.gather(*hold)
        await asyncio.gather(*tasks)
        sizes = [first.batch_sizes(hashlib.sha256(d).hexdigest()) or second.batch_sizes(hashlib.sha256(d).hexdigest())
                 for d in datas]  # fmt: skip
        assert max(s["a"] for s in sizes) > 1, sizes
    finally:
        release.set()
        first.close()
        second.close()


async def test_a_corrupt_image_fails_only_its_own_request(served: tuple[DetectionServer, str]) -> None:
    proxy = EnsembleProxy(served[1])
    try:
        bad, good = _corrupt(), _jpeg(20)
        outcomes = await asyncio.gather(
            proxy.detect(EncodedJpeg(bad, (320, 240)), bad, hashlib.sha256(bad).hexdigest()),
            proxy.detect(_encoded(good), good, hashlib.sha256(good).hexdigest()),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], UndecodableImage) and not isinstance(outcomes[1], BaseException)
        digests = [hashlib.sha256(d).hexdigest() for d in (bad, good)]
        many = await proxy.detect_many([EncodedJpeg(bad, (320, 240)), _encoded(good)], digests)
        assert isinstance(many[0], UndecodableImage) and not isinstance(many[1], UndecodableImage)
    finally:
        proxy.close()


async def test_calls_in_flight_fail_when_the_server_goes(tmp_path: Path) -> None:
    """The detection process's connection closing (it died): the call waiting raises DetectionLost,
    and so does the next one while nothing listens."""
    path = str(tmp_path / "detection.sock")
    arrived = asyncio.Event()

    async def accept_and_drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        arrived.set()
        await asyncio.sleep(0.05)
        writer.close()

    listener = await asyncio.start_unix_server(accept_and_drop, path)
    proxy = EnsembleProxy(path)
    data = _jpeg(30)
    call = asyncio.ensure_future(proxy.detect(_encoded(data), data))
    await arrived.wait()
    listener.close()
    await listener.wait_closed()
    with pytest.raises(DetectionLost, match="closed the connection"):
        await call
    os.remove(path)  # what a dead server leaves: a socket file nobody listens on
    with pytest.raises(DetectionLost, match="cannot be reached"):
        await proxy.detect(_encoded(data), data)
