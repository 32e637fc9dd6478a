"""Session affinity: rendezvous hashing on the session id keeps a conversation on one replica
(so its prefix cache is reused), with a load bound so a hot replica is not overloaded."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from router.policies.base import ReplicaView
from router.policies.least_loaded import LeastLoaded


def _score(key: str, replica: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{key}|{replica}".encode(), digest_size=8).digest(), "big")


class SessionAffinity:
    """Highest-random-weight choice per key; falls to the next-ranked replica when the chosen one
    carries more than `bound` x the mean load (+1). Requests without a key go least-loaded."""

    def __init__(self, bound: float = 1.5) -> None:
        self._bound = bound
        self._fallback = LeastLoaded()

    def choose(self, replicas: Sequence[ReplicaView], key: str) -> int:
        if not key:
            return self._fallback.choose(replicas, key)
        ranked = sorted(range(len(replicas)), key=lambda i: _score(key, replicas[i].name), reverse=True)
        limit = self._bound * (sum(r.load for r in replicas) / len(replicas)) + 1
        for i in ranked:
            if replicas[i].load <= limit:
                return i
        return ranked[0]
