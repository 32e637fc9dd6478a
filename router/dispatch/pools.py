"""Engine pools built from the config: replicas (an engine plus its priority slots) and a policy."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass, field

import httpx

from engines.base import Engine, GenerationRequest, Message
from engines.embedded import EmbeddedEngine
from engines.errors import EngineUnsupported
from engines.openai_http import OpenAIHTTPEngine
from engines.prometheus import EngineLoad, fetch_metrics, without_buckets
from engines.registry import SERVER_KINDS, ServerKind
from router.config import BreakerConfig, Config, PoolConfig
from router.dispatch.admission import PrioritySlots
from router.dispatch.breaker import CircuitBreaker, State, Transition
from router.dispatch.bulk_window import AdaptiveWindow
from router.dispatch.launcher import launch_spec
from router.dispatch.policies import Policy, make_policy
from router.dispatch.stall import Progress, Watched, stalled
from router.errors import ConfigError
from router.flow.vision import PixelBudget

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Replica:
    """One engine endpoint; pools that point at the same endpoint share it (and its slots)."""

    engine: Engine
    slots: PrioritySlots
    breaker: CircuitBreaker
    healthy: bool = True
    server: ServerKind | None = None  # a known engine server: its /metrics gives load and cache hits
    url: str = ""
    engine_load: EngineLoad | None = None  # the latest scrape (None: not scraped, or it failed)
    _http: httpx.AsyncClient | None = field(default=None, repr=False)
    progress: Progress = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.progress = Progress(self.engine.name)

    @property
    def name(self) -> str:
        return self.engine.name

    @property
    def load(self) -> int:
        """Requests on this replica: ours in flight, or the server's running + waiting if higher
        (other clients' traffic counts too)."""
        own = self.slots.in_flight
        m = self.engine_load
        if m is None or m.running is None:
            return own
        return max(own, int(m.running + (m.waiting or 0)))

    async def close(self) -> None:
        """Release the engine client and the metrics client."""
        await self.engine.close()
        if self._http is not None:
            await self._http.aclose()

    async def scrape(self) -> EngineLoad | None:
        """Read the server's /metrics once; keeps the result in `engine_load`."""
        if self.server is None:
            return None
        try:
            if self._http is None:
                self._http = httpx.AsyncClient(timeout=5.0)
            text = await fetch_metrics(self.url, self.server.metrics_path, client=self._http)
            self.engine_load = self.server.parse_load(without_buckets(text))
        except Exception as exc:  # an unreachable /metrics is the health check's business
            log.debug("metrics of %s unreadable: %s", self.name, exc)
            self.engine_load = None
        return self.engine_load


@dataclass(eq=False)
class Pool:
    """A named group of replicas of one engine type, with its routing policy and price table."""

    name: str
    config: PoolConfig
    replicas: list[Replica]
    breaker: CircuitBreaker
    policy: Policy = field(init=False)

    def __post_init__(self) -> None:
        self.policy = make_policy(self.config.policy)

    def available(self) -> list[Replica]:
        """Replicas a policy may choose from: healthy ones whose breaker lets a request through."""
        return [r for r in self.replicas if r.healthy and r.breaker.admits()]

    def all_failed(self) -> bool:
        """Whether every replica's breaker is OPEN (each failed requests): what opens the pool's breaker,
        not replicas that are merely down at this instant or probing."""
        return all(r.breaker.state is State.OPEN for r in self.replicas)

    def settle(self, ok: bool | None) -> None:
        """An outcome for the pool's breaker: one served answer closes it at once; a failure counts
        only when every replica's breaker is open (one replica failing is that replica's business)."""
        if ok:
            self.breaker.reset()
        self.breaker.settle(ok if ok or self.all_failed() else None)

    @property
    def vision(self) -> bool:
        """Whether this pool's model takes images (configured, or for the embedded engine, its checkpoint)."""
        return all(r.engine.vision for r in self.replicas)

    @property
    def budget(self) -> PixelBudget:
        c = self.config
        return PixelBudget(c.min_pixels, c.max_pixels, c.pixel_multiple)

    def context_tokens(self) -> int:
        """The model's context: configured, else the smallest any replica's server reported (0: unknown)."""
        known = [r.engine.context_tokens for r in self.replicas if r.engine.context_tokens]
        return self.config.context_tokens or min(known, default=0)


def build_pools(config: Config, on_transition: Callable[[str, str, str, str], None] | None = None) -> dict[str, Pool]:
    """One Pool per `[pools.<name>]`; the embedded engine and identical endpoints are shared.

    `on_transition(scope, name, old, new)` hears every breaker change (scope "pool" or "replica")."""
    shared: dict[str, Replica] = {}
    pools = {}

    def breaker(scope: str, name: str, bc: BreakerConfig) -> CircuitBreaker:
        hook: Transition | None = None
        if on_transition is not None:
            hook = lambda n, old, new: on_transition(scope, n, old.name, new.name)  # noqa: E731
        return CircuitBreaker(name, bc, on_transition=hook)

    for name, pc in config.pools.items():
        bc = pc.breaker or config.breaker
        batch_cap = max(1, int(pc.max_in_flight * pc.batch_share))
        share = pc.batch_share_busy
        busy_cap = max(1, int(pc.max_in_flight * share)) if isinstance(share, float) else None
        replicas = []
        if pc.engine == "embedded":
            if "embedded" not in shared:
                emb = config.embedded
                engine: Engine = EmbeddedEngine(emb.model, device=emb.device, threads=emb.threads)
                slots = PrioritySlots(1, 1)  # one generation at a time
                shared["embedded"] = Replica(engine, slots, breaker("replica", engine.name, bc))
            replicas.append(shared["embedded"])
        else:
            api_key = os.environ.get(pc.api_key_env, "") if pc.api_key_env else ""
            server = SERVER_KINDS.get(pc.engine)
            for url in pool_urls(pc):
                # Same server, same request settings: one engine object and one set of slots.
                key = json.dumps(
                    [
                        url,
                        pc.model,
                        pc.vision,
                        pc.extra_body,
                        pc.engine,
                        pc.priority_scheduling,
                        pc.per_request_pixels,
                        pc.http_client,
                    ]
                )
                if key not in shared:
                    http: Engine = OpenAIHTTPEngine(
                        url,
                        pc.model,
                        vision=pc.vision,
                        api_key=api_key,
                        read_timeout_s=pc.timeout_s,
                        extra_body=pc.extra_body,
                        kind=pc.engine,
                        send_priority=pc.priority_scheduling,
                        pixel_options=server.pixel_options if server and pc.per_request_pixels else "none",
                        probe_pixels=(pc.min_pixels, pc.max_pixels),
                        abort_path=server.abort_path if server else None,
                        continue_fields=server.continue_fields if server else None,
                        continuous_usage=server.continuous_usage if server else False,
                        http_client=pc.http_client,
                    )
                    window = AdaptiveWindow(1, batch_cap, pc.interactive_slowdown) if share == "auto" else None
                    slots = PrioritySlots(pc.max_in_flight, batch_cap, busy_cap, pc.interactive_hold_s, adaptive=window)
                    rb = breaker("replica", http.name, bc)
                    shared[key] = Replica(http, slots, rb, server=server, url=url.rstrip("/"))
                replicas.append(shared[key])
        pools[name] = Pool(name, pc, replicas, breaker("pool", name, bc))
    return pools


def pool_urls(pc: PoolConfig) -> list[str]:
    """A pool's server URLs: those given, then those of the servers it launches."""
    return [*pc.replicas, *(launch_spec(pc, lc).url for lc in pc.launch)]


def distinct_replicas(pools: dict[str, Pool]) -> list[Replica]:
    """Every replica once, in pool order."""
    seen: dict[int, Replica] = {}
    for pool in pools.values():
        for r in pool.replicas:
            seen.setdefault(id(r), r)
    return list(seen.values())


async def warm_up(pools: dict[str, Pool]) -> None:
    """Warm every replica in parallel; one that fails is marked unhealthy (traffic falls back), except
    a model that cannot take the images its pool is configured to send: that fails start-up."""

    async def one(r: Replica) -> None:
        try:
            await r.engine.warmup()
            r.healthy = True
        except EngineUnsupported as exc:
            names = ", ".join(f"pools.{p.name}" for p in pools.values() if r in p.replicas)
            raise ConfigError(f"{names}: {r.name} cannot serve requests as configured (vision): {exc}") from exc
        except Exception as exc:
            r.healthy = False
            log.warning("engine %s failed warm-up, marked unhealthy: %s", r.name, exc)

    await asyncio.gather(*(one(r) for r in distinct_replicas(pools)))


def recovered(pools: dict[str, Pool], replica: Replica) -> None:
    """A replica passed its health check after failing it: its breaker and its pools' close at once
    (the failures they counted were the outage the health check saw)."""
    replica.breaker.reset()
    replica.progress.resume()
    for pool in pools.values():
        if replica in pool.replicas:
            pool.breaker.reset()


def watched(pools: dict[str, Pool]) -> list[Watched]:
    """Every engine-server replica with its stall limit: the smallest `stall_s` of its pools that set one."""
    out = []
    for r in distinct_replicas(pools):
        limits = [p.config.stall_s for p in pools.values() if r in p.replicas and p.config.stall_s]
        if r.url and limits:  # the embedded engine runs in this process: a stall of it is the router's
            out.append(Watched(r.progress, min(limits)))
    return out


LOOP_LAG_S = 0.25  # a tick this much late means this process did not run: what looks idle may be unread
SETTLE_S = 0.5  # after such a lag, how long the loop must run on time before stalls are judged again


async def watch_stalls(pools: dict[str, Pool], on_stall: Callable[[Replica, float], None]) -> None:
    """Look for hung replicas forever, ten times per `stall_s` (at most every 0.1 s); `on_stall(replica,
    idle_s)` hears each. After the router's own event loop was held up (a late tick), the engines'
    bytes may be waiting unread: no replica is judged until the loop has run on time for a while."""
    entries = watched(pools)
    if not entries:
        return
    by_progress = {id(r.progress): r for r in distinct_replicas(pools)}
    tick = min(0.1, min(w.stall_s for w in entries) / 10)
    last = steady = time.monotonic()
    while True:
        await asyncio.sleep(tick)
        now = time.monotonic()
        if now - last > tick + LOOP_LAG_S:
            steady = now
            log.log(logging.WARNING if now - last > 1 else logging.DEBUG,
                    "the router's event loop was held up for %.2f s: stall checks wait", now - last - tick)  # fmt: skip
        last = now
        if now - steady < SETTLE_S:
            continue
        for w in stalled(entries, now):
            on_stall(by_progress[id(w.progress)], w.progress.idle_s(now))


def hung(replica: Replica, idle_s: float) -> int:
    """Mark a replica found stalled: down (its health check brings it back) and its reads failed over."""
    replica.healthy = False
    return replica.progress.stall(idle_s)


_PROBE = GenerationRequest((Message("user", "ping"),), max_tokens=1, temperature=0.0)


async def _healthy(replica: Replica, probe_s: float) -> bool:
    """Its health check passes; a replica marked hung must also finish a one-token generation within
    `probe_s`: a hung engine's /health may still answer."""
    try:
        if await replica.engine.health() is not True:
            return False
        if replica.progress.stalled_for:
            async with asyncio.timeout(probe_s):
                async with aclosing(replica.engine.generate(_PROBE)) as events:
                    async for _ in events:
                        pass
        return True
    except Exception:
        return False


async def watch_health(
    replica: Replica,
    on_recovered: Callable[[Replica], None],
    interval_s: float = 5.0,
    recovery_s: float = 0.1,
    probe_s: float = 5.0,
) -> None:
    """Check one replica's health forever, updating `healthy`: every `interval_s` while it is healthy
    and its breaker closed, every `recovery_s` otherwise, so a recovery is seen at the engine's speed;
    `on_recovered(replica)` hears each unhealthy -> healthy change. A replica marked hung comes back
    only once a generation finishes within `probe_s` too (`_healthy`)."""
    checked = time.monotonic()
    told = False  # that a hung replica's /health answers: logged once per outage
    while True:
        await asyncio.sleep(recovery_s)
        suspect = not replica.healthy or replica.breaker.state is not State.CLOSED
        if not suspect and time.monotonic() - checked < interval_s:
            continue
        checked = time.monotonic()
        healthy = await _healthy(replica, probe_s)
        if healthy != replica.healthy:
            log.warning("engine %s is now %s", replica.name, "healthy" if healthy else "unhealthy")
        elif not healthy and replica.progress.stalled_for and not told:
            told = True
            log.warning("engine %s is still hung: no generation finished within %.1f s (its health check may pass)",
                        replica.name, probe_s)  # fmt: skip
        told = told and not healthy  # a recovery re-arms the message
        was, replica.healthy = replica.healthy, healthy
        if healthy and not was:
            on_recovered(replica)


async def watch_load(replica: Replica, interval_s: float, on_scrape: Callable[[Replica], None]) -> None:
    """Scrape one server's /metrics every `interval_s` seconds, forever."""
    while True:
        await replica.scrape()
        on_scrape(replica)
        await asyncio.sleep(interval_s)
