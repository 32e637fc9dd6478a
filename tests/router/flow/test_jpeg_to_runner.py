"""The router's path for runners that decode JPEGs themselves (fused runners on a GPU), run here with
a real fused runner on the CPU told to take JPEGs: the header checked on the loop and the bytes
handed on; detect-only bulk items validated and detected as one batch, a bad one failing alone."""

from __future__ import annotations

import io
from typing import Any, cast

import pytest
from PIL import Image

from detectors.base import EncodedJpeg
from detectors.ensemble import Ensemble
from detectors.fused import FusedRunner
from detectors.ultralytics import UltralyticsDetector, UltralyticsSpec
from router.config import load_config
from router.flow.pipeline import Pipeline
from router.observe.metrics import Metrics


def _jpeg(color: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
async def pipeline() -> Any:
    members = [UltralyticsDetector(UltralyticsSpec(name=n, weights=w, imgsz=320, device="cpu"))
               for n, w in (("y11", "roadwork-yolo11n.pt"), ("y8", "roadwork-yolov8n.pt"))]  # fmt: skip
    runner = FusedRunner(members, "cpu")
    runner.decodes_jpeg = True  # as on a GPU: JPEG bytes reach the runner undecoded
    ensemble = Ensemble([runner], cache_size=16)
    await ensemble.warmup()
    yield Pipeline(load_config(env={}), ensemble, cast(Any, None), cast(Any, None), Metrics())
    ensemble.close()


async def test_a_jpeg_reaches_the_runner_undecoded(pipeline: Pipeline) -> None:
    data = _jpeg((120, 90, 60), (336, 248))
    image = await pipeline.decode(data)
    assert isinstance(image.pixels, EncodedJpeg) and image.pixels.size == (336, 248)
    detection = await pipeline.detect(data)
    assert (detection.width, detection.height) == (336, 248) and len(detection.votes) == 2
    assert all(v.status.value == "ok" for v in detection.votes)
    again = await pipeline.detect(data)
    assert again.cached and again.probability == detection.probability


async def test_bulk_items_are_detected_as_one_batch_and_a_bad_one_fails_alone(pipeline: Pipeline) -> None:
    items = [_jpeg((10 * k, 40, 200)) for k in range(5)]
    truncated = items[0][:-60]  # no end marker: PIL decodes it at validation and names the problem
    before = pipeline.ensemble.workers[0].batches
    outcomes = await pipeline.detect_items([*items[:2], b"not an image", truncated, *items[2:]])
    assert [o.error_reason for o in outcomes] == ["", "", "IMAGE_UNDECODABLE", "IMAGE_UNDECODABLE", "", "", ""]
    assert all(o.detection is not None and len(o.detection.votes) == 2 for o in outcomes if not o.error_code)
    assert "item.image" in outcomes[2].error_message
    assert pipeline.ensemble.workers[0].batches - before == 1  # the five good ones: one forward pass
