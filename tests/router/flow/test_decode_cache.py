"""Images whose detection is cached skip decoding; the fast path still answers correctly."""

from __future__ import annotations

from typing import Any

import pytest

import router.flow.pipeline as pipeline_module
from router._proto.roadwork.v1 import router_pb2 as pb
from router.flow.images import sniff_mime
from tests.conftest import RunningRouter


def test_sniff_mime() -> None:
    assert sniff_mime(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_mime(b"\x89PNG\r\n\x1a\nrest") == "image/png"
    assert sniff_mime(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_mime(b"GIF89a") is None and sniff_mime(b"") is None


def test_a_cached_image_is_not_decoded_again(
    router: RunningRouter, sample_jpeg: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = pipeline_module.decode_image

    def counting(data: bytes, **kw: Any) -> Any:
        calls.append(len(data))
        return real(data, **kw)

    monkeypatch.setattr(pipeline_module, "decode_image", counting)
    image = sample_jpeg + b"\x00"  # bytes no other test sent: not cached yet (JPEG ignores the trailer)
    first = router.stub.Detect(pb.DetectRequest(image=image), timeout=60).detection
    again = router.stub.Detect(pb.DetectRequest(image=image), timeout=60).detection
    assert len(calls) == 1 and not first.cached and again.cached
    assert again.roadwork_probability == first.roadwork_probability
    # Evicted between `decode` (which saw it cached) and the lookup: decoded after all, detected again.
    pipeline = router.app.pipeline
    lazy = router.call(pipeline.decode(image))
    assert lazy.pixels is None and lazy.mime == "image/jpeg" and len(calls) == 1
    router.app.ensemble.cache.clear()
    third = router.call(pipeline.detect_image(lazy))
    assert len(calls) == 2 and not third.cached and third.probability == pytest.approx(first.roadwork_probability)
