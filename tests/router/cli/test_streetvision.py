"""The StreetVision adapter against the real router, and when the router is unreachable."""

from __future__ import annotations

import io
import time

from PIL import Image

from router.cli.streetvision import RouterRoadworkDetector
from tests.conftest import RunningRouter, free_port


def test_adapter_returns_router_probability(router: RunningRouter, sample_jpeg: bytes) -> None:
    detector = RouterRoadworkDetector(router.addr)
    detector.load_model()
    try:
        p = detector(Image.open(io.BytesIO(sample_jpeg)))
        assert isinstance(p, float) and 0.5 < p <= 1.0  # the demo detectors see the sample's cones
        q = detector(Image.new("L", (224, 224), 90))  # grayscale input is converted, not rejected
        assert isinstance(q, float) and 0.0 <= q <= 1.0
    finally:
        detector.close()


def test_unreachable_router_answers_the_fallback_within_budget() -> None:
    detector = RouterRoadworkDetector(f"127.0.0.1:{free_port()}", timeout_s=1.0)
    start = time.monotonic()
    detector.load_model()
    p = detector(Image.new("RGB", (224, 224)))
    assert p == 0.5 and time.monotonic() - start < 9.0
    detector.close()
