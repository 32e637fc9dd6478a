"""The optional detection cache shared by replicas (`detection.shared_cache = "redis://..."`).

Keyed by image digest, behind each replica's local LRU: a replica that misses locally asks Redis
before detecting, and stores each complete detection it makes there, so N replicas detect an image
once. The cache is an optimisation: Redis unreachable only costs a detection (logged, never an error).
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from detectors.base import Detection
from router.state.serialize import dumps_detection, loads_detection

log = logging.getLogger(__name__)
PREFIX = "roadwork:detection:"
QUIET_S = 30.0  # one warning per this long while Redis is unreachable


class SharedDetectionCache:
    """Detections in Redis, each kept `ttl_s` after it was last stored."""

    def __init__(self, url: str, *, ttl_s: int, timeout_s: float = 0.5) -> None:
        self.url = url
        self._ttl_s = ttl_s
        self._redis = aioredis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._warned = 0.0

    def _failed(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned > QUIET_S:
            self._warned = now
            log.warning("detection.shared_cache: %s failed (%s); detecting locally meanwhile", what, exc)

    async def get(self, digest: str) -> Detection | None:
        try:
            raw = await self._redis.get(PREFIX + digest)
        except RedisError as exc:
            self._failed("a lookup", exc)
            return None
        if not raw:
            return None
        return loads_detection(raw.decode() if isinstance(raw, bytes) else raw)

    async def put(self, digest: str, detection: Detection) -> None:
        try:
            await self._redis.set(PREFIX + digest, dumps_detection(detection), ex=self._ttl_s)
        except RedisError as exc:
            self._failed("storing a detection", exc)

    async def close(self) -> None:
        await self._redis.aclose()
