"""The routing Policy protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class ReplicaView(Protocol):
    """What a policy may look at: a stable name and the current load."""

    @property
    def name(self) -> str: ...

    @property
    def load(self) -> int: ...


class Policy(Protocol):
    """Chooses one of the (already health-filtered, non-empty) replicas for a request."""

    def choose(self, replicas: Sequence[ReplicaView], key: str) -> int:
        """Index into `replicas`; `key` is the affinity key ('' when the request has none)."""
        ...
