"""Rendezvous (highest-random-weight) hashing with a load bound: the core of the affinity policies."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from router.dispatch.policies.base import ReplicaView


def _score(key: str, replica: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{key}|{replica}".encode(), digest_size=8).digest(), "big")


def rendezvous(replicas: Sequence[ReplicaView], key: str, bound: float) -> int:
    """The replica ranked first for `key`, or the next-ranked one while the chosen one carries more
    than `bound` x the mean load (+1). Adding or removing a replica moves only the keys it ranks first."""
    ranked = sorted(range(len(replicas)), key=lambda i: _score(key, replicas[i].name), reverse=True)
    limit = bound * (sum(r.load for r in replicas) / len(replicas)) + 1
    for i in ranked:
        if replicas[i].load <= limit:
            return i
    return ranked[0]
