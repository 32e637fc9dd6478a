"""Prometheus metrics (one registry per router instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from engines.prometheus import EngineLoad

BREAKER_STATES = ("CLOSED", "OPEN", "HALF_OPEN")  # gauge values 0, 1, 2
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Requests by RPC, kind, pool and status code; latency histograms; tokens and cost."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("roadwork_requests", "Finished requests", ["rpc", "kind", "pool", "code"], registry=r)
        self.request_seconds = Histogram(
            "roadwork_request_seconds", "Whole-request latency", ["rpc", "kind"], buckets=_LATENCY, registry=r
        )
        self.detection_seconds = Histogram(
            "roadwork_detection_seconds", "Detection stage latency (cache misses)", buckets=_LATENCY, registry=r
        )
        self.ttft_seconds = Histogram(
            "roadwork_ttft_seconds", "Time to first answer token", ["kind", "pool"], buckets=_LATENCY, registry=r
        )
        self.detection_cache = Counter("roadwork_detection_cache", "Detection cache lookups", ["result"], registry=r)
        self.tokens = Counter("roadwork_tokens", "Tokens by pool and type", ["pool", "type"], registry=r)
        self.cost_usd = Counter("roadwork_cost_usd", "Estimated cost in USD", ["pool"], registry=r)
        self.fallbacks = Counter(
            "roadwork_fallbacks", "Requests served by a fallback pool", ["kind", "pool"], registry=r
        )
        self.batch_items = Counter("roadwork_batch_items", "Bulk items finished", ["status"], registry=r)
        self.in_flight = Gauge("roadwork_in_flight", "Requests in flight by RPC", ["rpc"], registry=r)
        self.engine_load = Gauge(
            "roadwork_engine_load",
            "An engine server's figures from its /metrics: running, waiting, kv_cache_usage, prefix_cache_hit_rate",
            ["replica", "measure"],
            registry=r,
        )
        self.engine_healthy = Gauge(
            "roadwork_engine_healthy", "1 while a replica passes health checks", ["replica"], registry=r
        )
        self.engine_stalls = Counter(
            "roadwork_engine_stalls", "Replicas marked hung (pools.<name>.stall_s) and their streams failed over",
            ["replica"], registry=r,
        )  # fmt: skip
        self.engine_restarts = Counter(
            "roadwork_engine_restarts", "Launched engine servers restarted after exiting", ["replica"], registry=r
        )

        self.breaker_state = Gauge(
            "roadwork_breaker_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open", ["scope", "name"],
            registry=r,
        )  # fmt: skip
        self.breaker_transitions = Counter(
            "roadwork_breaker_transitions", "Circuit breaker state changes", ["scope", "name", "to"], registry=r
        )
        self.retries = Counter("roadwork_retries", "Engine calls retried before the first token", ["pool"], registry=r)

    def record_breaker(self, scope: str, name: str, old: str, new: str) -> None:
        """Export a breaker transition (state names as in `router.dispatch.breaker.State`)."""
        self.breaker_state.labels(scope, name).set(BREAKER_STATES.index(new))
        self.breaker_transitions.labels(scope, name, new.lower()).inc()

    def record_engine_load(self, replica: str, load: EngineLoad | None) -> None:
        """Export a scrape; figures the server does not report are left out."""
        if load is None:
            return
        figures = {"running": load.running, "waiting": load.waiting, "kv_cache_usage": load.kv_cache_usage}
        figures["prefix_cache_hit_rate"] = load.hit_rate_since()
        for measure, value in figures.items():
            if value is not None:
                self.engine_load.labels(replica, measure).set(value)

    def serve(self, host: str, port: int) -> int:
        """Start the /metrics HTTP endpoint; returns the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)
