"""Launch specs and a supervised engine-server process: start, wait for health, restart, stop."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import sys
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


GUARD = Path(__file__).with_name("orphan_guard.py")  # run by path: no package import, starts in milliseconds


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


_WILDCARDS = frozenset({"0.0.0.0", "::"})


def _proc_address(hex_addr: str) -> str:
    """An address as /proc/net/tcp{,6} writes it (hex, 32-bit words in host order) in text form."""
    raw = bytes.fromhex(hex_addr)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4)) if sys.byteorder == "little" else raw
    ip = ipaddress.ip_address(words)
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return str(mapped or ip)


def _overlaps(listener: str, host: str) -> bool:
    """Whether a socket listening on `listener` keeps a server from binding `host` (same port)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:  # a host name: any listener on the port may be it
        return True
    return listener in _WILDCARDS or host in _WILDCARDS or listener == host


def listening_sockets(host: str, port: int) -> set[int]:
    """Inodes of the TCP sockets listening on `port` that a server binding `host` would collide with
    (from /proc/net/tcp and tcp6; empty where there is no /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()  # sl, local address:port, remote, state, ..., uid, timeout, inode
            addr, _, hex_port = fields[1].rpartition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port and _overlaps(_proc_address(addr), host):
                inodes.add(int(fields[9]))
    return inodes


def socket_holders(inodes: set[int]) -> list[int]:
    """PIDs of the processes with one of these sockets open (those whose /proc/<pid>/fd we may read)."""
    wanted = {f"socket:[{i}]" for i in inodes}
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            links = [os.readlink(fd.path) for fd in os.scandir(f"{entry.path}/fd")]
        except OSError:  # another user's process, or one that just exited
            continue
        if wanted.intersection(links):
            pids.append(int(entry.name))
    return sorted(pids)


def command_line(pid: int, chars: int = 120) -> str:
    """A process's command line, shortened ('' when unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    text = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return text if len(text) <= chars else text[: chars - 3] + "..."


def port_held(host: str, port: int) -> str | None:
    """Who listens where a server would bind `host`:`port`, in words; None when nobody does."""
    inodes = listening_sockets(host, port)
    if not inodes:
        return None
    pids = socket_holders(inodes)
    if not pids:
        return f"port {port} is already in use by a process whose PID this user cannot see"
    who = ", ".join(f"PID {pid} ({command_line(pid) or '?'})" for pid in pids)
    return f"port {port} is already held by {who}"


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
        orphan_grace_s: float | None = None,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.base_url = base_url.rstrip("/")
        self.log_path = log_path
        self.health_path = health_path
        self.nice = nice  # > 0: run niced, so a busy-polling engine cannot starve its neighbours
        # Set: run under `orphan_guard.py`, which takes the process group down (SIGTERM, this grace,
        # SIGKILL) when this process dies; `pid` is then the guard's, the group's leader.
        self.orphan_grace_s = orphan_grace_s
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

    def _command(self) -> list[str]:
        """The command line to spawn: the server's, niced, under the orphan guard when asked."""
        argv = ["nice", "-n", str(self.nice), *self.argv] if self.nice > 0 else self.argv
        if self.orphan_grace_s is None:
            return argv
        return [sys.executable, str(GUARD), str(os.getpid()), str(self.orphan_grace_s), "--", *argv]

    async def start(self, timeout_s: float = 300.0) -> None:
        """Spawn the server unless it is running, then wait until it is healthy."""
        if not self.alive:
            await self.stop()  # clear what a dead server left behind: its children, the log handle
            self._log = self._open_log()
            argv = self._command()
            self._proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=self._log,
                stderr=asyncio.subprocess.STDOUT,
                env=self.env,
                # Own process group (stop() reaches the engine's worker processes too), but the router's
                # session: with the kernel's autogroup scheduling (sched_autogroup_enabled, on in most
                # distributions) a new session is a new scheduling group, which gets as much CPU as the
                # router's whole group whatever its nice value, so a busy-polling engine starves the router.
                process_group=0,
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
