"""The routing Policy protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RouteKey:
    """What affinity policies hash on: the request's session and its image's digest ('' when absent)."""

    session: str = ""
    image: str = ""


class ReplicaView(Protocol):
    """What a policy may look at: a stable name and the current load."""

    @property
    def name(self) -> str: ...

    @property
    def load(self) -> int: ...


class Policy(Protocol):
    """Chooses one of the (already health-filtered, non-empty) replicas for a request."""

    def choose(self, replicas: Sequence[ReplicaView], key: RouteKey) -> int:
        """Index into `replicas`; `key` holds the request's affinity keys."""
        ...
