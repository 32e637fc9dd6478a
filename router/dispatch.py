"""Sends a generation to the pools of its kind in fallback order; streams deltas, then `Served`."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass

from engines.base import Delta, Finished, GenerationRequest
from engines.errors import EngineError
from router.config import Price, RoutingConfig
from router.errors import Unavailable, from_engine_error
from router.pools import Pool
from router.types import RequestKind, Route


@dataclass(frozen=True)
class Served:
    """The end of a dispatched generation: who served it and what the engine reported."""

    route: Route
    finished: Finished
    price: Price


class Dispatcher:
    """Pool choice by kind, replica choice by the pool's policy, fallback before the first token."""

    def __init__(self, pools: dict[str, Pool], routing: RoutingConfig) -> None:
        self._pools = pools
        self._routing = routing

    async def stream(
        self, kind: RequestKind, request: GenerationRequest, *, key: str = ""
    ) -> AsyncGenerator[Delta | Served, None]:
        """Try each pool in order; an engine failure before any text moves on to the next pool.

        Raises `Unavailable` when every pool failed, or the mapped error when a failure cannot be
        retried elsewhere (bad request) or text was already streamed.
        """
        interactive = kind is not RequestKind.BATCH
        tried: list[str] = []
        failures: list[str] = []
        for name in self._routing.pools_for(kind.value):
            pool = self._pools[name]
            replicas = pool.available()
            if not replicas:
                tried.append(name)
                failures.append(f"{name}: no healthy replica")
                continue
            replica = replicas[pool.policy.choose(replicas, key)]
            await replica.slots.acquire(interactive)
            started = False
            try:
                async with aclosing(replica.engine.generate(request)) as events:
                    async for event in events:
                        if isinstance(event, Delta):
                            started = True
                            yield event
                        else:
                            route = Route(kind, name, replica.engine.kind, replica.name, event.model, tuple(tried))
                            yield Served(route, event, pool.config.price)
                return
            except EngineError as exc:
                if started or not exc.retryable:
                    raise from_engine_error(exc, name) from exc
                tried.append(name)
                failures.append(f"{name}: {exc}")
            finally:
                replica.slots.release(interactive)
        raise Unavailable("no engine pool could answer: " + "; ".join(failures))
