"""Prometheus text exposition -> samples by name, and the load summary every engine's `/metrics` maps to."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[dict[str, str], float]
Samples = dict[str, list[Sample]]


@dataclass(frozen=True)
class EngineLoad:
    """An engine's load as its `/metrics` reports it; None where the engine does not expose a figure."""

    running: float | None = None  # requests in the running batch
    waiting: float | None = None  # requests queued, not yet scheduled
    kv_cache_usage: float | None = None  # fraction of the KV cache in use, 0..1
    prefix_cache_hit_rate: float | None = None  # the engine's own hit-rate gauge, 0..1
    prefix_cache_hits: float | None = None  # cumulative cached prompt tokens (counter)
    prefix_cache_queries: float | None = None  # cumulative prompt tokens looked up (counter)

    def hit_rate_since(self, earlier: EngineLoad | None = None) -> float | None:
        """Token hit rate from the counters (over the interval since `earlier`), else the engine's gauge."""
        hits, queries = self.prefix_cache_hits, self.prefix_cache_queries
        if hits is None or queries is None:
            return self.prefix_cache_hit_rate
        old_hits, old_queries = (earlier.prefix_cache_hits, earlier.prefix_cache_queries) if earlier else (None, None)
        if old_hits is not None and old_queries is not None and old_queries <= queries:  # else: counters reset
            hits, queries = hits - old_hits, queries - old_queries
        return hits / queries if queries > 0 else None


def parse_samples(text: str) -> Samples:
    """Every sample in `text` by sample name (counters keep `_total`); NaN dropped; ValueError if malformed."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if not math.isnan(s.value):
                out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


def _first(samples: Samples, names: tuple[str, ...]) -> list[Sample] | None:
    """Samples of the first of `names` present: list a metric's new name before its deprecated one."""
    for name in names:
        if name in samples:
            return samples[name]
    return None


def total(samples: Samples, *names: str, collapse: Collection[str] = ()) -> float | None:
    """Sum over label sets of the first present name; series differing only in `collapse` labels count once."""
    rows = _first(samples, names)
    if rows is None:
        return None
    if not collapse:
        return sum(v for _, v in rows)
    groups: dict[tuple[tuple[str, str], ...], float] = {}
    for labels, value in rows:
        key = tuple(sorted((k, v) for k, v in labels.items() if k not in collapse))
        groups[key] = max(groups.get(key, value), value)
    return sum(groups.values())


def mean(samples: Samples, *names: str) -> float | None:
    """Mean over label sets of the first present name (for fractions such as cache usage)."""
    rows = _first(samples, names)
    return sum(v for _, v in rows) / len(rows) if rows else None


def add(*values: float | None) -> float | None:
    """Sum of the values present; None if none is."""
    present = [v for v in values if v is not None]
    return sum(present) if present else None


async def fetch_metrics(
    base_url: str, path: str = "/metrics", timeout_s: float = 5.0, client: httpx.AsyncClient | None = None
) -> str:
    """GET a server's Prometheus exposition text; raises httpx errors (incl. non-2xx status).

    Pass a long-lived `client` when scraping repeatedly: a new one costs a TLS context and a connection."""
    if client is None:
        async with httpx.AsyncClient(timeout=timeout_s) as own:
            return await fetch_metrics(base_url, path, timeout_s, own)
    resp = await client.get(base_url.rstrip("/") + path, timeout=timeout_s)
    resp.raise_for_status()
    return resp.text


def without_buckets(text: str) -> str:
    """The exposition without histogram bucket lines (most of vLLM's /metrics; no load figure needs them)."""
    return "\n".join(line for line in text.splitlines() if "_bucket{" not in line)
