"""Composes the router from its config and runs it: gRPC server, health, reflection, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import ssl
from collections.abc import Awaitable
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from engines.servers import port_held
from router._proto.roadwork.v1 import router_pb2 as pb
from router.api.reflection import DocumentedPool
from router.api.server import RouterServicer, register
from router.config import Config
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.launcher import Launcher
from router.dispatch.pools import (
    Replica,
    build_pools,
    distinct_replicas,
    hung,
    recovered,
    warm_up,
    watch_health,
    watch_load,
    watch_stalls,
    watched,
)
from router.errors import ConfigError
from router.flow.detection import build_stage, warm_up_stage
from router.flow.pipeline import Pipeline
from router.flow.shared_cache import SharedDetectionCache
from router.observe import tracing
from router.observe.metrics import Metrics
from router.state.jobs import JobRunner, JobStore
from router.state.sessions import SessionStore
from router.state.store import open_store

log = logging.getLogger(__name__)
SERVICE = pb.DESCRIPTOR.services_by_name["RouterService"].full_name


def _preload() -> None:
    """Import torch, torchvision, ultralytics and transformers (what warm-up will need)."""
    import torch  # noqa: F401
    import torchvision  # noqa: F401
    import transformers  # noqa: F401
    import ultralytics  # noqa: F401


def tls_credentials(config: Config) -> grpc.ServerCredentials | None:
    """TLS credentials from server.tls_cert_file / tls_key_file; None serves plaintext."""
    s = config.server
    if not s.tls_cert_file:
        return None
    pem = {}
    for key, path, marker in (("tls_cert_file", s.tls_cert_file, "CERTIFICATE-----"),
                              ("tls_key_file", s.tls_key_file, "PRIVATE KEY-----")):  # fmt: skip
        try:
            pem[key] = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"server.{key}: {exc}") from exc
        if marker.encode() not in pem[key]:
            raise ConfigError(f"server.{key}: {path} holds no PEM {marker[:-5].lower()}")
    try:  # grpc would accept any bytes here and fail every handshake later
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(s.tls_cert_file, s.tls_key_file)
    except ssl.SSLError as exc:
        raise ConfigError(f"server.tls_cert_file / server.tls_key_file: they do not load as a pair: {exc}") from exc
    return grpc.ssl_server_credentials([(pem["tls_key_file"], pem["tls_cert_file"])])


def _cannot_bind(keys: str, host: str, port: int, exc: OSError | None = None) -> str:
    """A start-up error naming the config keys, with who holds the port when /proc tells."""
    held = port_held(host, port)
    why = held or (exc.strerror if exc is not None and exc.strerror else "refused")
    off = " (0 turns it off)" if "metrics" in keys else ""
    return f"{keys}: cannot listen on {host}:{port}: {why}; stop that process or choose another port{off}"


class RouterApp:
    """The running router. `start()` binds and serves at once; health turns SERVING after warm-up."""

    def __init__(self, config: Config) -> None:
        self.config = config
        tracing.setup(config.observe.trace_endpoint, config.observe.service_name)
        self.metrics = Metrics()
        st = config.storage
        self.store = open_store(
            st.url, path=st.resolved(), pool_max=st.pool_max, connect_timeout_s=st.connect_timeout_s
        )
        self.ensemble, self.detection_process = build_stage(config)
        self.pools = build_pools(config, on_transition=self.metrics.record_breaker)
        for pool in self.pools.values():
            self.metrics.breaker_state.labels("pool", pool.name).set(0)
        for replica in distinct_replicas(self.pools):
            self.metrics.breaker_state.labels("replica", replica.name).set(0)
        self.launcher = Launcher(config)
        self.dispatcher = Dispatcher(
            self.pools, config.routing, config.retry, on_retry=lambda pool: self.metrics.retries.labels(pool).inc()
        )
        self.sessions = SessionStore(
            self.store, default_ttl_s=config.sessions.ttl_s, max_ttl_s=config.sessions.max_ttl_s
        )
        det = config.detection
        shared = SharedDetectionCache(det.shared_cache, ttl_s=det.shared_cache_ttl_s) if det.shared_cache else None
        self.pipeline = Pipeline(config, self.ensemble, self.dispatcher, self.sessions, self.metrics, shared)
        self.jobs = JobStore(self.store, lease_s=config.batch.lease_s)
        batch = config.batch
        self.runner = JobRunner(
            self.jobs,
            self.pipeline,
            workers=batch.workers,
            poll_s=batch.poll_s,
            item_timeout_s=batch.item_timeout_s,
            detect_batch=batch.detect_batch,
        )
        self.health = health.aio.HealthServicer()
        self.ready = asyncio.Event()
        self.port = 0
        self.metrics_port = 0
        self._server: grpc.aio.Server | None = None
        self._background: list[asyncio.Task[None]] = []
        self._stopping = False

    def serving(self) -> bool:
        """gRPC health says SERVING: warmed up and not shutting down (the HTTP /readyz)."""
        return self.ready.is_set() and not self._stopping

    async def start(self) -> int:
        """Bind the port and start serving; returns the port. Warm-up continues in the background,
        except in an extra worker process (`server.workers`): it binds only once warmed up, because
        the kernel hands new connections to every socket on the port, ready or not."""
        await self.store.open()  # a ConfigError naming storage.url when PostgreSQL cannot be reached
        s = self.config.server
        bind_late = s.worker_index > 0
        if bind_late:
            self._background.append(asyncio.create_task(self._warm_up(), name="warm-up"))
            await self.wait_ready()
        max_msg = s.max_message_bytes
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", max_msg),
                ("grpc.max_send_message_length", max_msg),
                ("grpc.max_concurrent_streams", s.max_concurrent_streams),
                ("grpc.so_reuseport", 1 if s.workers > 1 else 0),  # several processes share the port
            ]
        )
        register(
            RouterServicer(
                self.config, self.pipeline, self.sessions, self.jobs, self.metrics, serving=self.ready.is_set
            ),
            server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server,
            pool=DocumentedPool(),  # the pool's interface, its files with their comments
        )
        if not self.ready.is_set():
            for name in ("", SERVICE):
                await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        address = f"{s.host}:{s.port}"
        credentials = tls_credentials(self.config)
        try:
            if credentials is not None:
                self.port = server.add_secure_port(address, credentials)
            else:
                self.port = server.add_insecure_port(address)
        except RuntimeError:  # grpcio: "Failed to bind to address ..."
            self.port = 0
        if self.port == 0:
            raise ConfigError(_cannot_bind("server.host / server.port", s.host, s.port))
        if s.metrics_port:  # before the gRPC server starts: a refused port leaves nothing half started
            try:
                self.metrics_port = self.metrics.serve(
                    s.metrics_host, s.metrics_port, ready=self.serving, processes=s.workers
                )
            except OSError as exc:
                raise ConfigError(_cannot_bind("server.metrics_port", s.metrics_host, s.metrics_port, exc)) from exc
        await server.start()
        self._server = server
        if not bind_late:
            self._background.append(asyncio.create_task(self._warm_up(), name="warm-up"))
        log.info("roadwork-router listening on %s:%d", s.host, self.port)
        return self.port

    async def _warm_up(self) -> None:
        # Import the heavy libraries once, on one thread: torchvision imported from two threads at
        # once (detector and embedded engine warming up in parallel) fails with a circular import.
        await asyncio.to_thread(_preload)
        replicas = distinct_replicas(self.pools)
        await asyncio.gather(warm_up_stage(self.ensemble, self.detection_process, self.config), self._start_engines())
        if self.detection_process is not None:
            supervise = self.detection_process.supervise()
            self._background.append(asyncio.create_task(supervise, name="detection-supervisor"))
        await self.runner.start()
        stall_limits = {id(w.progress): w.stall_s for w in watched(self.pools)}
        for replica in replicas:
            probe_s = stall_limits.get(id(replica.progress), 5.0)  # a generation within stall_s, once marked hung
            watch = watch_health(replica, on_recovered=lambda r: recovered(self.pools, r), probe_s=probe_s)
            self._background.append(asyncio.create_task(watch, name=f"health-{replica.name}"))
        self._background.append(
            asyncio.create_task(
                self.launcher.supervise(on_restart=lambda url: self.metrics.engine_restarts.labels(url).inc()),
                name="engine-supervisor",
            )
        )
        self._background.append(asyncio.create_task(watch_stalls(self.pools, self._stalled), name="stall-watch"))
        for replica, interval in self._scraped(replicas):
            task = watch_load(replica, interval, self._record_load)
            self._background.append(asyncio.create_task(task, name=f"metrics-{replica.name}"))
        self._background.append(asyncio.create_task(self._purge_sessions(), name="session-purge"))
        self._background.append(asyncio.create_task(self._sample_replicas(replicas), name="replica-gauges"))
        # Everything loaded so far (torch, models) lives as long as the process: move it out of the
        # collector's reach, so full collections stop costing ~0.1-0.25 s pauses on the request path.
        gc.collect()
        gc.freeze()
        for name in ("", SERVICE):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.ready.set()
        self.metrics.serving.set(1)
        log.info("roadwork-router is SERVING (detectors and engines warmed up)")

    async def _start_engines(self) -> None:
        """Launch the configured engine servers (waiting for their health), then warm every replica."""
        await self.launcher.start()
        await warm_up(self.pools)

    def _scraped(self, replicas: list[Replica]) -> list[tuple[Replica, float]]:
        """Replicas whose servers expose load metrics, each with its pool's scrape interval."""
        out = []
        for r in replicas:
            intervals = [p.config.metrics_interval_s for p in self.pools.values() if r in p.replicas]
            if r.server is not None and min(intervals) > 0:
                out.append((r, min(intervals)))
        return out

    def _stalled(self, replica: Replica, idle_s: float) -> None:
        aborted = hung(replica, idle_s)
        self.metrics.engine_stalls.labels(replica.name).inc()
        self.metrics.engine_healthy.labels(replica.name).set(0)
        log.warning(
            "engine %s is hung: no progress for %.1f s while other replicas progressed; marked down, %d streams"
            " failed over",
            replica.name, idle_s, aborted,
        )  # fmt: skip

    def _record_load(self, replica: Replica) -> None:
        self.metrics.record_engine_load(replica.name, replica.engine_load)
        self.metrics.engine_healthy.labels(replica.name).set(1 if replica.healthy else 0)

    async def _sample_replicas(self, replicas: list[Replica], interval_s: float = 0.5) -> None:
        while True:
            self.metrics.record_replicas(replicas)
            await asyncio.sleep(interval_s)

    async def _purge_sessions(self) -> None:
        while True:
            await asyncio.sleep(600)
            await self.sessions.purge()

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        """Wait until SERVING; re-raises a failed warm-up instead of waiting forever."""
        warm = self._background[0]
        await asyncio.wait_for(asyncio.shield(warm), timeout_s)

    async def wait(self) -> None:
        assert self._server is not None
        await self._server.wait_for_termination()

    async def stop(self, grace_s: float | None = None, others: Awaitable[None] | None = None) -> None:
        """Stop accepting, give in-flight RPCs `grace_s`, stop workers, close engines and the store.
        `others`: the extra router processes stopping meanwhile; the shared detection process stops
        only after them, so their last requests are still detected."""
        self._stopping = True
        self.metrics.serving.set(0)
        await self.health.enter_graceful_shutdown()
        grace = self.config.server.grace_s if grace_s is None else grace_s
        # Bulk workers take no new items; those in flight get the same grace as the RPCs.
        stopping = [self.runner.drain(grace)]
        if self._server is not None:
            stopping.append(self._server.stop(grace))
        await asyncio.gather(*stopping)
        for t in self._background:
            t.cancel()
        for t in self._background:
            with contextlib.suppress(BaseException):
                await t
        for r in distinct_replicas(self.pools):
            await r.close()
        await self.launcher.stop()
        self.ensemble.close()
        if others is not None:
            await others
        if self.detection_process is not None:
            await self.detection_process.stop()
        if self.pipeline.shared_cache is not None:
            await self.pipeline.shared_cache.close()
        await self.store.close()
        self.metrics.close()
        tracing.shutdown()
