"""The detection cache replicas share (detection.shared_cache) on a real redis-server: every field
round-trips, a second router finds the first one's detection there, and Redis down costs nothing
but a detection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from router._proto.roadwork.v1 import router_pb2 as pb
from router.flow.shared_cache import SharedDetectionCache
from tests.conftest import RunningRouter, free_port, make_config
from tests.router.state.test_serialize import DETECTION


async def test_every_detection_field_round_trips_through_redis(redis_url: str) -> None:
    cache = SharedDetectionCache(redis_url, ttl_s=60)
    assert await cache.get(DETECTION.image_sha256) is None
    await cache.put(DETECTION.image_sha256, DETECTION)
    assert await cache.get(DETECTION.image_sha256) == DETECTION
    await cache.close()


async def test_redis_unreachable_is_a_miss_not_an_error() -> None:
    cache = SharedDetectionCache(f"redis://127.0.0.1:{free_port()}/0", ttl_s=60, timeout_s=0.2)
    await cache.put(DETECTION.image_sha256, DETECTION)
    assert await cache.get(DETECTION.image_sha256) is None
    await cache.close()


@pytest.fixture
def two_routers(tmp_path: Path, redis_url: str) -> Iterator[tuple[RunningRouter, RunningRouter]]:
    env = {"ROADWORK__DETECTION__SHARED_CACHE": redis_url}
    a = RunningRouter(make_config(tmp_path / "a", **env)).wait_ready()
    b = RunningRouter(make_config(tmp_path / "b", **env)).wait_ready()
    yield a, b
    a.stop()
    b.stop()


def test_a_replica_reuses_the_detection_another_made(two_routers: tuple[RunningRouter, RunningRouter]) -> None:
    a, b = two_routers
    image = (Path(__file__).resolve().parents[3] / "router" / "assets" / "sample_roadwork.jpg").read_bytes()
    first = a.stub.Detect(pb.DetectRequest(image=image), timeout=60).detection
    assert not first.cached and first.votes
    second = b.stub.Detect(pb.DetectRequest(image=image), timeout=60).detection
    assert second.cached, "b found a's detection in Redis instead of detecting"
    assert (second.image_sha256, list(second.votes), second.roadwork_probability) == (
        first.image_sha256, list(first.votes), first.roadwork_probability
    )  # fmt: skip
    assert b.stub.Detect(pb.DetectRequest(image=image), timeout=60).detection.cached  # now in b's own LRU
