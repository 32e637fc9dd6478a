"""Prometheus metrics (one registry per router instance; one directory of files shared by the
processes of `server.workers`, summed on /metrics by prometheus-client's multiprocess mode)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app, values
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from engines.prometheus import EngineLoad

if TYPE_CHECKING:
    from router.dispatch.admission import PrioritySlots

BREAKER_STATES = ("CLOSED", "OPEN", "HALF_OPEN")  # gauge values 0, 1, 2
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own variable: where each process writes


class Sampled(Protocol):
    """What the per-replica gauges read from a replica (router.dispatch.pools.Replica)."""

    @property
    def name(self) -> str: ...
    @property
    def slots(self) -> PrioritySlots: ...


def multiprocess_dir() -> str | None:
    """The directory the worker processes' metrics are written to, when several processes serve."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """Requests by RPC, kind, pool and status code; latency histograms; tokens and cost.

    With `server.workers > 1` every process writes its figures to `multiprocess_dir()` and the first
    one's /metrics reads them all: counters and histograms are summed over every process that ever
    ran (a restarted worker's counts are kept). Gauges say how they combine in their help text: `sum`
    (live processes added up), `latest` (the most recent reading of any live process: they watch
    the same engine server) or `per process` (a `pid` label: each process has its own breakers)."""

    def __init__(self) -> None:
        if multiprocess_dir():  # set before the first metric is built (the variable is read at import)
            values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        r = self.registry = CollectorRegistry()
        self._server: WSGIServer | None = None
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
        self.in_flight = Gauge(
            "roadwork_in_flight", "Requests in flight by RPC (sum)", ["rpc"], registry=r, multiprocess_mode="livesum"
        )
        self.queue_depth = Gauge(
            "roadwork_queue_depth", "Requests waiting for a slot on a replica, by priority (sum)",
            ["replica", "priority"], registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.bulk_window = Gauge(
            "roadwork_bulk_window", "Bulk items a replica admits at once now (sum)", ["replica"], registry=r,
            multiprocess_mode="livesum",
        )  # fmt: skip
        self.serving = Gauge(
            "roadwork_serving", "1 while a router process is SERVING (sum: the processes serving)", registry=r,
            multiprocess_mode="livesum",
        )  # fmt: skip
        self.engine_load = Gauge(
            "roadwork_engine_load",
            "An engine server's figures from its /metrics: running, waiting, kv_cache_usage, prefix_cache_hit_rate"
            " (latest)",
            ["replica", "measure"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.engine_healthy = Gauge(
            "roadwork_engine_healthy", "1 while a replica passes health checks (latest)", ["replica"], registry=r,
            multiprocess_mode="livemostrecent",
        )  # fmt: skip
        self.engine_stalls = Counter(
            "roadwork_engine_stalls", "Replicas marked hung (pools.<name>.stall_s) and their streams failed over",
            ["replica"], registry=r,
        )  # fmt: skip
        self.engine_restarts = Counter(
            "roadwork_engine_restarts", "Launched engine servers restarted after exiting", ["replica"], registry=r
        )

        self.breaker_state = Gauge(
            "roadwork_breaker_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open (per process)",
            ["scope", "name"], registry=r, multiprocess_mode="liveall",
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

    def record_replicas(self, replicas: Iterable[Sampled]) -> None:
        """Export each replica's queues (interactive, bulk) and its bulk window now."""
        for replica in replicas:
            slots = replica.slots
            for priority, interactive in (("interactive", True), ("bulk", False)):
                self.queue_depth.labels(replica.name, priority).set(slots.queued(interactive))
            self.bulk_window.labels(replica.name).set(slots.batch_window())

    def serve(self, host: str, port: int, ready: Callable[[], bool] = lambda: True, processes: int = 1) -> int:
        """Start the HTTP endpoint (/metrics, and /healthz and /readyz for load balancers that cannot
        speak gRPC health: 200 while the process runs / while it is SERVING, /readyz's body saying how
        many of the `processes` (`server.workers`) serve); returns the bound port."""
        directory = multiprocess_dir()
        registry = self.registry
        if directory:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        metrics_app = make_wsgi_app(registry)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path in ("/healthz", "/readyz"):
                ok = path == "/healthz" or ready()
                status = "200 OK" if ok else "503 Service Unavailable"
                start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
                body = "ok" if ok else "not serving"
                if path == "/readyz":
                    body += f": {serving_processes(registry)} of {processes} router processes serving"
                return [body.encode() + b"\n"]
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]

        self._server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_Quiet)
        threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True).start()
        return int(self._server.server_port)

    def close(self) -> None:
        """Stop the HTTP endpoint."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Quiet(WSGIRequestHandler):
    """No access log on stderr for every scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serving_processes(registry: CollectorRegistry) -> int:
    """The `roadwork_serving` sum in `registry` (every live process's, in multiprocess mode)."""
    return int(sum(s.value for m in registry.collect() if m.name == "roadwork_serving" for s in m.samples))


def process_exited(pid: int) -> None:
    """Drop a finished worker process's live gauges (its counters stay in the sums)."""
    directory = multiprocess_dir()
    if directory:
        mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
