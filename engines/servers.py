"""Launch specs and a supervised engine-server process: start, wait for health, restart, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx


@dataclass(frozen=True)
class LaunchSpec:
    """What to serve, where, and on which GPUs; each engine module turns it into a command line."""

    model: str  # model directory (or hub id)
    host: str = "127.0.0.1"
    port: int = 8000
    gpu_ids: tuple[int, ...] = ()  # -> CUDA_VISIBLE_DEVICES; empty leaves the inherited value alone
    tensor_parallel: int = 1
    served_model_name: str = ""  # the name clients send as `model`; empty: the engine's default
    extra_args: tuple[str, ...] = ()  # appended to the command line as is
    extra_env: tuple[tuple[str, str], ...] = ()  # set in the server's environment
    quantization: str = ""  # weight quantization, in the engine's own names ("" = none / the checkpoint's)
    kv_cache_dtype: str = ""  # "" = the engine's default
    prefix_caching: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} out of range")
        if self.tensor_parallel < 1 or (self.gpu_ids and self.tensor_parallel > len(self.gpu_ids)):
            raise ValueError(f"tensor_parallel={self.tensor_parallel} does not fit gpu_ids={self.gpu_ids}")

    @property
    def url(self) -> str:
        """Base URL a client on this machine reaches the server at."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"


def launch_env(spec: LaunchSpec, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The server's environment: `base` (default: ours) plus CUDA_VISIBLE_DEVICES and `spec.extra_env`."""
    env = dict(os.environ if base is None else base)
    if spec.gpu_ids:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in spec.gpu_ids)
    env.update(spec.extra_env)
    return env


class ServerStartError(RuntimeError):
    """The server process exited before it became healthy."""


def process_group_alive(pgid: int) -> bool:
    """Whether a process group still has a live (non-zombie) member; reads /proc where it exists."""
    if pgid <= 1:
        raise ValueError(f"not a server's process group: {pgid}")
    if not os.path.isdir("/proc"):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()  # state, ppid, pgrp, ...
            if fields[0] != "Z" and int(fields[2]) == pgid:
                return True
    return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    if pgid <= 1:  # 0 would be our own group
        raise ValueError(f"not a server's process group: {pgid}")
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


class ManagedServer:
    """One engine server in its own process group, output to a log file, healthy when `health_path` is 200."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        base_url: str,
        log_path: Path,
        *,
        health_path: str = "/health",
        nice: int = 0,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.base_url = base_url.rstrip("/")
        self.log_path = log_path
        self.health_path = health_path
        self.nice = nice  # > 0: run niced, so a busy-polling engine cannot starve its neighbours
        self.starts = 0
        self._proc: asyncio.subprocess.Process | None = None  # the latest process
        self._stopped = True  # whether the latest process group was stopped (signalled and reaped)
        self._log: IO[bytes] | None = None

    @property
    def alive(self) -> bool:
        """Whether the server's main process is running (not whether it is healthy)."""
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - chars))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _open_log(self) -> IO[bytes]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        return self.log_path.open("ab")

    async def start(self, timeout_s: float = 300.0) -> None:
        """Spawn the server unless it is running, then wait until it is healthy."""
        if not self.alive:
            await self.stop()  # clear what a dead server left behind: its children, the log handle
            self._log = self._open_log()
            argv = ["nice", "-n", str(self.nice), *self.argv] if self.nice > 0 else self.argv
            self._proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=self._log,
                stderr=asyncio.subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # own process group: stop() reaches the engine's worker processes too
            )
            self._stopped = False
            self.starts += 1
        await self.wait_healthy(timeout_s)

    async def healthy(self) -> bool:
        """Whether the health endpoint answers 200 now."""
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                resp = await client.get(self.base_url + self.health_path)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    async def wait_healthy(self, timeout_s: float = 300.0) -> None:
        """Poll the health endpoint; ServerStartError if the process exits, TimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            if not self.alive:
                raise ServerStartError(f"{self.argv[:4]} exited with {self.returncode}:\n{self.log_tail()}")
            if await self.healthy():
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.base_url} not healthy after {timeout_s} s:\n{self.log_tail()}")
            await asyncio.sleep(0.5)

    async def stop(self, grace_s: float = 20.0) -> int | None:
        """SIGTERM the whole process group, SIGKILL what is left after `grace_s`; returns the exit code."""
        proc = self._proc
        if proc is not None and not self._stopped:
            deadline = time.monotonic() + grace_s
            if process_group_alive(proc.pid):
                _signal_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace_s)
            except TimeoutError:
                pass
            while time.monotonic() < deadline:  # the engine's worker processes may outlive the leader
                if not process_group_alive(proc.pid):
                    break
                await asyncio.sleep(0.1)
            if process_group_alive(proc.pid):
                _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
            self._stopped = True  # never signal this group id again: the kernel may reuse it
        if self._log is not None:
            self._log.close()
            self._log = None
        return proc.returncode if proc else None

    async def restart(self, timeout_s: float = 300.0, grace_s: float = 20.0) -> None:
        """Stop (whatever is left of) the server and start it again."""
        await self.stop(grace_s)
        await self.start(timeout_s)

    async def __aenter__(self) -> ManagedServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
