"""The extra router processes of `server.workers`: started once the first one is SERVING,
restarted when one exits on its own, stopped with the first."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from router.config import Config, ServerConfig
from router.observe.metrics import MULTIPROC_ENV, process_exited

log = logging.getLogger("roadwork.workers")


def share_cores(workers: int) -> None:
    """With several router processes, give each a share of the cores for torch's thread pools
    (`OMP_NUM_THREADS`, unless set): N processes each spinning a pool the size of the machine
    (detection on the CPU) thrash, and starve an engine on the same host. Call before torch loads."""
    if workers > 1:
        share = str(max(1, (os.cpu_count() or 1) // workers))
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            if var not in os.environ:
                os.environ[var] = share
                os.environ["ROADWORK_SHARED_CORES"] = "1"  # set here: the shared detection process takes all


def share_metrics(server: ServerConfig) -> str | None:
    """With several router processes, the directory their metrics go to (prometheus-client's
    multiprocess mode: the first process's /metrics sums them), made by the first process and
    inherited by the others; returns it when this process made it (remove it at exit). A directory
    the operator set in PROMETHEUS_MULTIPROC_DIR is used instead, emptied of a previous run's files."""
    if server.workers == 1 or server.worker_index > 0:
        return None
    if os.environ.get(MULTIPROC_ENV):
        for stale in Path(os.environ[MULTIPROC_ENV]).glob("*.db"):
            stale.unlink()
        return None
    os.environ[MULTIPROC_ENV] = directory = tempfile.mkdtemp(prefix="roadwork-metrics-")
    return directory


class WorkerProcesses:
    """`server.workers - 1` more `roadwork-router serve` processes on this process's port.

    The kernel spreads new connections over every socket bound to the port (SO_REUSEPORT), so an
    extra worker binds only once it has warmed up (`RouterApp.start`): none is handed a client it
    cannot serve yet. A worker that dies is started again after a backoff (1 s, doubling to 30 s;
    back to 1 s once one has run for a minute); its clients' connections fail and reconnect to the
    others."""

    def __init__(self, config: Config, port: int, config_path: str | None) -> None:
        self._config = config
        self._port = port
        self._config_path = config_path
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self._started: dict[int, float] = {}
        self._backoff: dict[int, float] = {}
        self._stopping = False

    def start(self) -> None:
        for i in range(1, self._config.server.workers):
            self._spawn(i)
        if self.procs:
            print(f"roadwork-router: {len(self.procs)} more worker processes on port {self._port}", flush=True)

    def _spawn(self, index: int) -> None:
        s = self._config.server
        env = dict(os.environ, ROADWORK__SERVER__WORKER_INDEX=str(index), ROADWORK__SERVER__METRICS_PORT="0",
                   ROADWORK__SERVER__PORT=str(self._port), ROADWORK__SERVER__HOST=s.host)  # fmt: skip
        config = ["--config", self._config_path] if self._config_path else []
        self.procs[index] = subprocess.Popen([sys.executable, "-m", "router.cli.main", "serve", *config], env=env)
        self._started[index] = time.monotonic()

    async def supervise(self, poll_s: float = 0.5) -> None:
        """Restart workers that exit while this process is serving (run as a task)."""
        while not self._stopping:
            await asyncio.sleep(poll_s)
            for index, proc in list(self.procs.items()):
                code = proc.poll()
                if code is None or self._stopping:
                    continue
                process_exited(proc.pid)
                ran = time.monotonic() - self._started[index]
                delay = 1.0 if ran > 60 else min(30.0, 2 * self._backoff.get(index, 0.5))
                self._backoff[index] = delay
                log.warning("worker process %d (pid %d) exited with %s after %.1f s; restarting it in %.0f s",
                            index, proc.pid, code, ran, delay)  # fmt: skip
                await asyncio.sleep(delay)
                if not self._stopping:
                    self._spawn(index)

    async def stop(self, grace_s: float) -> None:
        """SIGTERM every worker; SIGKILL those still running `grace_s` + 15 s later."""
        self._stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                await asyncio.wait_for(asyncio.to_thread(proc.wait), grace_s + 15)
            except TimeoutError:
                proc.kill()
            process_exited(proc.pid)
