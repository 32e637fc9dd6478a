"""Session affinity: rendezvous hashing on the session id keeps a conversation on one replica
(so its prefix cache is reused), with a load bound so a hot replica is not overloaded."""

from __future__ import annotations

from collections.abc import Sequence

from router.dispatch.policies.base import ReplicaView, RouteKey
from router.dispatch.policies.least_loaded import LeastLoaded
from router.dispatch.policies.rendezvous import rendezvous


class SessionAffinity:
    """Highest-random-weight choice per session; falls to the next-ranked replica when the chosen one
    carries more than `bound` x the mean load (+1). Requests outside a session go least-loaded."""

    def __init__(self, bound: float = 1.5) -> None:
        self._bound = bound
        self._fallback = LeastLoaded()

    def choose(self, replicas: Sequence[ReplicaView], key: RouteKey) -> int:
        if not key.session:
            return self._fallback.choose(replicas, key)
        return rendezvous(replicas, key.session, self._bound)
