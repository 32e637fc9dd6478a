"""Round-robin: each replica in turn."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from router.dispatch.policies.base import ReplicaView, RouteKey


class RoundRobin:
    def __init__(self) -> None:
        self._counter = itertools.count()

    def choose(self, replicas: Sequence[ReplicaView], key: RouteKey) -> int:
        return next(self._counter) % len(replicas)
