"""Power of two choices: sample two replicas at random, take the less loaded one.

Near least-loaded balance without every request herding onto the same replica between two load
updates (the scraped engine load lags by up to `metrics_interval_s`)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from router.dispatch.policies.base import ReplicaView, RouteKey


class PowerOfTwo:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def choose(self, replicas: Sequence[ReplicaView], key: RouteKey) -> int:
        if len(replicas) == 1:
            return 0
        i, j = self._rng.sample(range(len(replicas)), 2)
        return i if replicas[i].load <= replicas[j].load else j
