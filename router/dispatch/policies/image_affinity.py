"""Image affinity: rendezvous hashing on the image's digest, so every request about one image (two
clients asking about one frame, a session's follow-ups, bulk items sharing a session's image) goes
to the replica whose prefix cache already holds its image tokens; with the same load bound as
session affinity. A request without an image hashes on its session; one with neither goes least-loaded."""

from __future__ import annotations

from collections.abc import Sequence

from router.dispatch.policies.base import ReplicaView, RouteKey
from router.dispatch.policies.least_loaded import LeastLoaded
from router.dispatch.policies.rendezvous import rendezvous


class ImageAffinity:
    """Highest-random-weight choice per image digest (else per session), within a load bound."""

    def __init__(self, bound: float = 1.5) -> None:
        self._bound = bound
        self._fallback = LeastLoaded()

    def choose(self, replicas: Sequence[ReplicaView], key: RouteKey) -> int:
        affinity = key.image or key.session
        if not affinity:
            return self._fallback.choose(replicas, key)
        return rendezvous(replicas, affinity, self._bound)
