"""Routing policies: one file each, behind the `Policy` protocol; `make_policy` picks by config name."""

from __future__ import annotations

from router.dispatch.policies.base import Policy, ReplicaView, RouteKey
from router.dispatch.policies.image_affinity import ImageAffinity
from router.dispatch.policies.least_loaded import LeastLoaded
from router.dispatch.policies.power_of_two import PowerOfTwo
from router.dispatch.policies.round_robin import RoundRobin
from router.dispatch.policies.session_affinity import SessionAffinity

__all__ = [
    "ImageAffinity",
    "LeastLoaded",
    "Policy",
    "PowerOfTwo",
    "ReplicaView",
    "RoundRobin",
    "RouteKey",
    "SessionAffinity",
    "make_policy",
]


def make_policy(name: str) -> Policy:
    """The policy object for a `pools.<name>.policy` value."""
    policies: dict[str, type[Policy]] = {
        "round_robin": RoundRobin,
        "least_loaded": LeastLoaded,
        "power_of_two": PowerOfTwo,
        "session_affinity": SessionAffinity,
        "image_affinity": ImageAffinity,
    }
    return policies[name]()
