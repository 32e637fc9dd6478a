"""Prometheus metrics (one registry per router instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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

    def serve(self, host: str, port: int) -> int:
        """Start the /metrics HTTP endpoint; returns the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)
