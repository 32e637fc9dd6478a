"""Least-loaded: the replica with the fewest requests in flight (ties rotate)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from router.dispatch.policies.base import ReplicaView, RouteKey


class LeastLoaded:
    def __init__(self) -> None:
        self._counter = itertools.count()

    def choose(self, replicas: Sequence[ReplicaView], key: RouteKey) -> int:
        start = next(self._counter) % len(replicas)
        order = [(start + i) % len(replicas) for i in range(len(replicas))]
        return min(order, key=lambda i: replicas[i].load)
