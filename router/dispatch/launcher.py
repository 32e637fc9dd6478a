"""Engine servers the router runs itself (`[[pools.<name>.launch]]`): start, supervise, stop."""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engines.registry import SERVER_KINDS
from engines.servers import LaunchSpec, ManagedServer, port_held
from router.config import Config, LaunchConfig, PoolConfig
from router.errors import ConfigError

log = logging.getLogger(__name__)
ORPHAN_GRACE_S = 5.0  # a launched server outliving the router gets SIGTERM, then SIGKILL this much later


@dataclass(eq=False)
class Launched:
    """One launched server and what the supervisor knows of it."""

    pool: str
    config: LaunchConfig
    server: ManagedServer
    restarts: int = 0
    stopping: bool = False

    @property
    def url(self) -> str:
        return self.server.base_url


def log_dir(config: Config) -> Path:
    """Engine logs go next to the router's database (a temp folder for an in-memory one)."""
    path = config.storage.resolved()
    base = Path(tempfile.gettempdir()) if path == ":memory:" else Path(path).parent
    return base / "engine-logs"


def _priority_args(engine: str, enabled: bool, given: list[str]) -> tuple[str, ...]:
    """vLLM schedules by request priority only with --scheduling-policy priority."""
    if enabled and engine == "vllm" and "--scheduling-policy" not in given:
        return ("--scheduling-policy", "priority")
    return ()


def launch_spec(pc: PoolConfig, lc: LaunchConfig) -> LaunchSpec:
    """The engine-side description of one `[[pools.<name>.launch]]` entry."""
    return LaunchSpec(
        model=lc.model,
        host=lc.host,
        port=lc.port,
        gpu_ids=tuple(lc.gpus),
        tensor_parallel=lc.tensor_parallel,
        served_model_name=lc.served_model_name,
        extra_args=tuple(lc.extra_args) + _priority_args(pc.engine, pc.priority_scheduling, lc.extra_args),
        extra_env=tuple(lc.env.items()),
        quantization=lc.quantization,
        kv_cache_dtype=lc.kv_cache_dtype,
        prefix_caching=lc.prefix_caching,
    )


class Launcher:
    """Starts every configured server, restarts one that dies (with backoff), stops them all on shutdown."""

    def __init__(self, config: Config) -> None:
        self.servers: list[Launched] = []
        if config.server.worker_index:  # an extra worker process: the first process runs the servers
            return
        logs = log_dir(config)
        for name, pc in config.pools.items():
            kind = SERVER_KINDS.get(pc.engine)
            for lc in pc.launch:
                assert kind is not None  # config validation: launch needs a server engine
                spec = launch_spec(pc, lc)
                argv, env = kind.launch_command(spec, lc.python or sys.executable)
                log_path = logs / f"{name}-{lc.port}.log"
                guard = ORPHAN_GRACE_S
                server = ManagedServer(
                    argv, env, spec.url, log_path, health_path=kind.health_path, nice=lc.nice, orphan_grace_s=guard
                )
                self.servers.append(Launched(name, lc, server))

    @staticmethod
    def _held(s: Launched) -> str | None:
        """Why `s` cannot bind its port (another process listens there), or None."""
        held = port_held(s.config.host, s.config.port)
        if held is None:
            return None
        return (
            f"pools.{s.pool}.launch: {held}, a process this router did not start; stop it, "
            "or give the launch entry another port"
        )

    async def _start_one(self, s: Launched) -> bool:
        if not s.server.alive:
            await s.server.stop()  # what a dead server left behind goes first: it may hold the port
            if held := self._held(s):  # the holder's /health would pass for ours
                log.error("engine server %s (pool %s) not started: %s", s.url, s.pool, held)
                return False
        try:
            await s.server.start(s.config.start_timeout_s)
            log.info("engine server %s (pool %s) is up: %s", s.url, s.pool, s.server.log_path)
            return True
        except Exception as exc:  # the replica stays unhealthy; the supervisor keeps trying
            log.error("engine server %s (pool %s) failed to start: %s", s.url, s.pool, exc)
            return False

    async def start(self) -> None:
        """Start every server in parallel and wait until each is healthy (or has failed); ConfigError,
        starting none, when a launch port is already held by another process."""
        held = [reason for s in self.servers if (reason := self._held(s))]
        if held:
            raise ConfigError("; ".join(held))
        await asyncio.gather(*(self._start_one(s) for s in self.servers))

    async def supervise(
        self, on_restart: Callable[[str], None] = lambda url: None, check_s: float = 1.0, max_backoff_s: float = 60.0
    ) -> None:
        """Forever: restart any server whose process has exited, backing off while it keeps failing;
        `on_restart(url)` hears of each attempt."""
        backoff = {id(s): 1.0 for s in self.servers}
        while True:
            await asyncio.sleep(check_s)
            for s in self.servers:
                if s.stopping or s.server.alive:
                    continue
                log.warning("engine server %s exited (code %s); restarting", s.url, s.server.returncode)
                s.restarts += 1
                on_restart(s.url)
                if await self._start_one(s):
                    backoff[id(s)] = 1.0
                else:
                    await asyncio.sleep(backoff[id(s)])
                    backoff[id(s)] = min(max_backoff_s, backoff[id(s)] * 2)

    async def stop(self, grace_s: float = 20.0) -> None:
        """Stop every server (SIGTERM to its process group, SIGKILL after `grace_s`)."""
        for s in self.servers:
            s.stopping = True
        await asyncio.gather(*(s.server.stop(grace_s) for s in self.servers))
