"""Sends a generation to the pools of its kind in fallback order; streams deltas, then `Served`.

Per pool: the pool's breaker must allow it; then up to `retry.max_attempts` tries (tenacity:
backoff with jitter, bounded by the request's deadline), each on a replica the pool's policy picks
among healthy replicas whose breaker admits it, preferring ones this request has not failed on.
A try ends when the engine's first event arrives; from then on the answer is committed to that
replica, and a failure is reported, not retried. Only engine-side failures count against breakers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass

from engines.base import Delta, Finished, GenerationEvent, GenerationRequest
from engines.errors import EngineError, EngineTimeout, EngineUnavailable, EngineUnsupported
from router.config import Price, RetryConfig, RoutingConfig
from router.errors import InvalidRequest, Overloaded, Unavailable, from_engine_error
from router.policies.base import RouteKey
from router.pools import Pool, Replica
from router.retry import retrying
from router.types import RequestKind, Route
from router.vision import ImagePreparer, ImageSent, image_of, with_image


@dataclass(frozen=True)
class Served:
    """The end of a dispatched generation: who served it, what the engine reported, the image it saw."""

    route: Route
    finished: Finished
    price: Price
    image: ImageSent | None = None


def _engine_outcome(exc: BaseException) -> bool | None:
    """What a failure says about the engine, for its breakers: False for an engine-side failure,
    None (no outcome) for anything else: a bad request, a cancel, a bug."""
    return False if isinstance(exc, EngineError) and exc.retryable else None


NO_KEY = RouteKey()
FIRST_TOKEN_DEADLINE_SHARE = 0.5  # of the request's remaining time, at most, waited for a first token


def first_token_limit(configured_s: float, deadline: float | None, now: float) -> float:
    """How long one try waits for its first token: `first_token_timeout_s`, capped at a share of the
    time the request has left, so a hung replica is failed over while there is time to."""
    if deadline is None:
        return configured_s
    return max(0.0, min(configured_s, FIRST_TOKEN_DEADLINE_SHARE * (deadline - now)))


class _NoReplica(Exception):
    """Every replica of the pool is unhealthy or behind an open breaker."""


class _TooLarge(Exception):
    """The request's image does not fit this pool's model context at the pool's pixel budget."""


class _QueueFull(Exception):
    """The pool's admission queue for interactive requests is full."""


@dataclass
class _Opened:
    """A replica that produced its first event; the rest of its stream is still to read."""

    replica: Replica
    events: AsyncGenerator[GenerationEvent, None]
    first: GenerationEvent


class Dispatcher:
    """Pool choice by kind, replica choice by the pool's policy, retries and fallback before the first token."""

    def __init__(
        self,
        pools: dict[str, Pool],
        routing: RoutingConfig,
        retry: RetryConfig | None = None,
        on_retry: Callable[[str], None] | None = None,
        images: ImagePreparer | None = None,
    ) -> None:
        self._pools = pools
        self._images = images or ImagePreparer()
        self._routing = routing
        self._retry = retry or RetryConfig()
        self._on_retry = on_retry

    @property
    def pools(self) -> dict[str, Pool]:
        return self._pools

    async def stream(
        self,
        kind: RequestKind,
        request: GenerationRequest,
        *,
        key: RouteKey = NO_KEY,
        deadline: float | None = None,
        on_commit: Callable[[str], None] = lambda pool: None,
    ) -> AsyncGenerator[Delta | Served, None]:
        """Try each pool in order; engine failures before any text move on to the next pool.

        `deadline` (a `time.monotonic()` value) bounds the retries. `on_commit(pool)` hears which
        pool the answer is committed to (its first event arrived), before that event is yielded.

        Raises `Unavailable` when every pool failed, `Overloaded` when every pool that could take it
        has a full queue, `InvalidRequest` when the image fits no pool's context, or the mapped error
        when a failure cannot be retried elsewhere (bad request) or text was already streamed.
        """
        interactive = kind is not RequestKind.BATCH
        started = time.monotonic()
        tried: list[str] = []
        failures: list[str] = []
        full: list[Pool] = []
        too_large: list[str] = []
        for name in self._routing.pools_for(kind.value):
            pool = self._pools[name]
            if not pool.breaker.allow():
                tried.append(name)
                failures.append(f"{name}: circuit open for {pool.breaker.retry_in_s():.1f} s more")
                continue
            try:
                pool_request, image = await self._for_pool(pool, request)
                opened = await self._open(pool, pool_request, interactive, key, deadline)
            except _NoReplica:
                pool.breaker.settle(False if pool.all_failed() else None)  # down at this instant is no failure
                tried.append(name)
                failures.append(f"{name}: no healthy replica (down, or its circuit is open)")
                continue
            except _TooLarge as exc:  # another pool's budget or context may take it
                pool.breaker.release()
                too_large.append(name)
                tried.append(name)
                failures.append(f"{name}: {exc}")
                continue
            except _QueueFull:
                pool.breaker.release()
                full.append(pool)
                tried.append(name)
                failures.append(f"{name}: queue full")
                continue
            except EngineUnsupported as exc:  # the model cannot; another pool's may
                pool.breaker.release()
                tried.append(name)
                failures.append(f"{name}: {exc} (pools.{name}.vision, pools.{name}.per_request_pixels)")
                continue
            except EngineError as exc:
                pool.breaker.settle(_engine_outcome(exc))
                if not exc.retryable:
                    raise from_engine_error(exc, name) from exc
                tried.append(name)
                failures.append(f"{name}: {exc}")
                continue
            except BaseException:
                pool.breaker.release()
                raise
            on_commit(name)
            async for event in self._relay(pool, opened, kind, tuple(tried), started, image):
                yield event
            return
        if too_large and len(too_large) == len(tried):
            raise InvalidRequest(
                "the image does not fit the model of any pool for this request: " + "; ".join(failures)
            )
        if full and len(full) == len(tried):
            wait = min(p.config.timeout_s for p in full) / 10
            raise Overloaded(
                "every engine pool for this request is at its queue limit (pools.<name>.max_queue): "
                + "; ".join(failures),
                retry_after_s=round(max(0.1, wait), 1),
            )
        raise Unavailable("no engine pool could answer: " + "; ".join(failures))

    async def _for_pool(self, pool: Pool, request: GenerationRequest) -> tuple[GenerationRequest, ImageSent | None]:
        """`request` as this pool takes it: its image fitted to the pool's pixel budget (dropped for a
        text-only pool), checked against the model's context; and what the image became."""
        image = image_of(request)
        if image is None:
            return request, None
        if not pool.vision:
            return with_image(request, None, None), None
        budget = pool.budget
        part, sent = await self._images.prepare(image, budget)
        context = pool.context_tokens()
        if context and sent.tokens + request.max_tokens > context:
            raise _TooLarge(
                f"the image needs {sent.tokens} tokens at {sent.width}x{sent.height} and the answer up to "
                f"{request.max_tokens}: over the {context}-token context of pool '{pool.name}'s model "
                f"(lower pools.{pool.name}.max_pixels, now {budget.max_pixels}, or options.max_tokens)"
            )
        return with_image(request, part, budget if pool.config.per_request_pixels else None), sent

    async def _relay(
        self,
        pool: Pool,
        opened: _Opened,
        kind: RequestKind,
        tried: tuple[str, ...],
        started: float,
        image: ImageSent | None,
    ) -> AsyncGenerator[Delta | Served, None]:
        """Stream a committed replica's events to the caller; settle breakers and the slot at the end."""
        replica, interactive = opened.replica, kind is not RequestKind.BATCH
        outcome: bool | None = None
        try:
            async with aclosing(opened.events) as rest:
                event = opened.first
                while True:  # the first event, then the rest of the stream (no extra generator layer per token)
                    if isinstance(event, Delta):
                        yield event
                    else:
                        route = Route(kind, pool.name, replica.engine.kind, replica.name, event.model, tried)
                        outcome = True
                        tokens = event.usage.completion_tokens
                        if interactive and tokens >= 4:  # bulk's toll on this answer: queueing, prefill, decode
                            replica.slots.observe((time.monotonic() - started) / tokens)
                        sent = image.with_engine_tokens(event.usage.image_tokens) if image else None
                        yield Served(route, event, pool.config.price, sent)
                    try:
                        event = await anext(rest)
                    except StopAsyncIteration:
                        break
        except EngineError as exc:
            outcome = _engine_outcome(exc)
            raise from_engine_error(exc, pool.name) from exc
        finally:
            replica.slots.release(interactive)
            replica.breaker.settle(outcome)
            pool.settle(outcome)

    def _pick(self, pool: Pool, key: RouteKey, failed: set[int]) -> Replica:
        """The policy's choice among admitted replicas, those this request failed on last."""
        candidates = pool.available()
        fresh = [r for r in candidates if id(r) not in failed]
        choices = fresh or candidates
        if not choices:
            raise _NoReplica
        return choices[pool.policy.choose(choices, key)]

    async def _open(
        self, pool: Pool, request: GenerationRequest, interactive: bool, key: RouteKey, deadline: float | None
    ) -> _Opened:
        """Tries (with retries) until a replica yields its first event."""
        failed: set[int] = set()
        attempt_no = 0
        async for attempt in retrying(self._retry, deadline):
            with attempt:
                attempt_no += 1
                if attempt_no > 1 and self._on_retry is not None:
                    self._on_retry(pool.name)
                replica = self._pick(pool, key, failed)
                try:
                    return await self._first_event(pool, replica, request, interactive, deadline)
                except EngineError:
                    failed.add(id(replica))
                    raise
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _first_event(
        self, pool: Pool, replica: Replica, request: GenerationRequest, interactive: bool, deadline: float | None
    ) -> _Opened:
        """One try on one replica: a slot (or a place in the bounded queue), the breaker's leave,
        then the engine's first event within `first_token_timeout_s` (capped by the deadline)."""
        slots = replica.slots
        if not slots.try_acquire(interactive):
            if interactive and slots.queued(True) >= pool.config.max_queue:
                raise _QueueFull
            await slots.acquire(interactive)
        if not replica.breaker.allow():  # it opened while this request waited for the slot
            slots.release(interactive)
            raise EngineUnavailable(f"{replica.name}: circuit opened while the request waited")
        events = replica.engine.generate(request)
        limit = first_token_limit(pool.config.first_token_timeout_s, deadline, time.monotonic())
        try:
            try:
                async with asyncio.timeout(limit):
                    first = await anext(events)
            except TimeoutError as exc:
                raise EngineTimeout(
                    f"{replica.name}: no first token within {limit:.3g} s (pools.{pool.name}.first_token_timeout_s,"
                    " at most half the time the request had left)"
                ) from exc
            except StopAsyncIteration as exc:
                raise EngineUnavailable(f"{replica.name}: the stream ended without a result") from exc
        except BaseException as exc:
            replica.breaker.settle(_engine_outcome(exc))
            slots.release(interactive)
            await events.aclose()
            raise
        return _Opened(replica, events, first)
