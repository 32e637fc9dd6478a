"""Shared fixtures: a real router served on loopback (in a thread with its own event loop), config
factories, free ports, and a real vLLM server on the CPU for the slow tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from engines import vllm
from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc
from router.api.app import RouterApp
from router.config import Config, load_config
from tests.pg import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "router" / "assets" / "sample_roadwork.jpg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_config(tmp: Path, **env: str) -> Config:
    """The quick-start config on a free port, with its store in `tmp`, plus ROADWORK__ overrides."""
    base = {
        "ROADWORK__SERVER__PORT": "0",
        "ROADWORK__SERVER__METRICS_PORT": "0",
        "ROADWORK__SERVER__GRACE_S": "1",
        "ROADWORK__STORAGE__PATH": str(tmp / "router.sqlite3"),
    }
    base.update(env)
    return load_config(env=base)


class RunningRouter:
    """A RouterApp served from a background thread; tests use blocking gRPC stubs against it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="router-loop")
        self.thread.start()
        self.app: RouterApp = self.call(self._make())
        self.port = self.call(self.app.start())
        self.addr = f"127.0.0.1:{self.port}"
        self.channel = grpc.insecure_channel(
            self.addr,
            options=[("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)],
        )
        self.stub = pb_grpc.RouterServiceStub(self.channel)

    async def _make(self) -> RouterApp:
        return RouterApp(self.config)

    def call(self, coro: Any, timeout: float = 300) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def wait_ready(self, timeout: float = 300) -> RunningRouter:
        self.call(self.app.wait_ready(timeout), timeout + 5)
        return self

    def stop(self) -> None:
        self.channel.close()
        self.call(self.app.stop(0.5))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="session")
def sample_jpeg() -> bytes:
    return SAMPLE.read_bytes()


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    """The quick-start router (embedded engine, placeholder detector), warmed up."""
    r = RunningRouter(make_config(tmp_path_factory.mktemp("router"))).wait_ready()
    yield r
    r.stop()


def ask(stub: pb_grpc.RouterServiceStub, timeout: float = 120, **kw: Any) -> list[pb.AskResponse]:
    return list(stub.Ask(pb.AskRequest(**kw), timeout=timeout))


class ErrorDetails:
    """A failed call's google.rpc.Status as grpcio-status reads it: ErrorInfo, RetryInfo, BadRequest."""

    def __init__(self, err: grpc.RpcError) -> None:
        status = rpc_status.from_call(err)  # checks the Status's code and message against the call's
        assert status is not None, f"{err.code().name} ({err.details()}): no grpc-status-details-bin"  # type: ignore[attr-defined]
        self.status = status
        found: dict[type[Any], Any] = {}
        for detail in status.details:
            kind = next(k for k in _DETAIL_TYPES if detail.Is(k.DESCRIPTOR))  # StopIteration: an unknown type
            assert kind not in found, f"two {kind.__name__} details"
            found[kind] = kind()
            detail.Unpack(found[kind])
        self.info: error_details_pb2.ErrorInfo = found[error_details_pb2.ErrorInfo]
        assert self.info.domain == "roadwork.v1"
        self.retry: error_details_pb2.RetryInfo | None = found.get(error_details_pb2.RetryInfo)
        self.bad_request: error_details_pb2.BadRequest | None = found.get(error_details_pb2.BadRequest)

    @property
    def reason(self) -> str:
        return str(self.info.reason)

    @property
    def field(self) -> str:
        """The one field violation's field ("" without a BadRequest)."""
        if self.bad_request is None:
            return ""
        (violation,) = self.bad_request.field_violations
        assert violation.description == self.status.message and violation.reason == self.reason
        return str(violation.field)


_DETAIL_TYPES = (error_details_pb2.ErrorInfo, error_details_pb2.RetryInfo, error_details_pb2.BadRequest)


def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    """The error `call()` fails with (wrap a stream in list() to read it to its end)."""
    with pytest.raises(grpc.RpcError) as exc:
        call()
    return exc.value


# -- a real vLLM server (CPU) ----------------------------------------------------------------------


def vllm_python() -> str | None:
    path = os.environ.get("ROADWORK_VLLM_PYTHON") or str(ROOT / ".venv-vllm" / "bin" / "python")
    return path if Path(path).exists() else None


def require_vllm_python() -> str:
    """The vLLM venv's python; skips the test without one, except in CI, where vLLM must run."""
    python = vllm_python()
    if python is None:
        if os.environ.get("CI"):
            pytest.fail("vLLM venv missing: `make test` builds .venv-vllm (or set ROADWORK_VLLM_PYTHON)")
        pytest.skip("no vLLM venv (.venv-vllm or ROADWORK_VLLM_PYTHON); `make test` builds it")
    return python


class VLLMServer:
    """`python -m vllm.entrypoints.openai.api_server` on the tiny local model, on a free port."""

    def __init__(self, python: str, model: Path, log: Path, port: int = 0, extra_args: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.python, self.model, self.log, self.extra_args = python, model, log, extra_args
        self.proc = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ, **dict(vllm.CPU_ENV))
        return subprocess.Popen(
            [self.python, "-m", vllm.ENTRYPOINT, "--model", str(self.model), "--host", "127.0.0.1",
             "--port", str(self.port), "--enable-prompt-tokens-details", *vllm.CPU_ARGS, "--served-model-name", "tiny",
             *self.extra_args],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=env, process_group=0,
            # vLLM's CPU engine busy-polls; niced, it cannot starve the router under test (2 cores). Its own
            # process group but this session: a new session is a new autogroup, where nice means nothing.
            preexec_fn=lambda: os.nice(10),
        )  # fmt: skip

    def signal(self, sig: int) -> None:
        """Send `sig` to the server's whole process group (API server and engine core)."""
        os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL every process of the server, as a crash would."""
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def restart(self) -> VLLMServer:
        """Start it again on the same port (after `kill`); call `wait()` for health."""
        self.proc = self._spawn()
        return self

    def wait(self, timeout: float = 300) -> VLLMServer:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"vLLM not healthy after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def healthy(self, timeout: float = 1.0) -> bool:
        """Whether /health answers 200 now."""
        try:
            return httpx.get(f"{self.url}/health", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a Prometheus metric's samples on the server's /metrics whose labels match."""
        want = [f'{k}="{v}"' for k, v in labels.items()]
        total = 0.0
        for line in httpx.get(f"{self.url}/metrics", timeout=5).text.splitlines():
            if (line.startswith(name + "{") or line.startswith(name + " ")) and all(w in line for w in want):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def finished(self) -> float:
        """Requests that ran to completion (stop or length); aborted ones are not counted by vLLM."""
        return self.metric("vllm:request_success_total")

    def outcome(self, finished_before: float) -> str:
        """How the one request sent since `finished_before` ended: "completed" or "aborted"."""
        self.settle(timeout=90)  # an unaborted 10,000-token answer runs to its end first
        time.sleep(0.3)  # let the counters catch up
        return "completed" if self.finished() > finished_before else "aborted"

    def settle(self, timeout: float = 10) -> None:
        """Wait until no request is running."""
        deadline = time.time() + timeout
        while time.time() < deadline and self.metric("vllm:num_requests_running") > 0:
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engines.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engines.tiny_vlm import build_vlm

    return build_vlm(tmp_path_factory.mktemp("models") / "tiny-vlm")


# Compact JSON under guided decoding: a random-weight model otherwise pads whitespace up to max_tokens.
STRUCTURED_COMPACT = ("--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}')


@pytest.fixture(scope="session")
def vllm_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    """One real vLLM server for the session. Missing vLLM fails in CI (it must run there)."""
    server = VLLMServer(require_vllm_python(), tiny_model, tmp_path_factory.mktemp("vllm") / "vllm.log")
    try:
        yield server.wait()
    finally:
        server.stop()


class TCPProxy:
    """A loopback TCP relay that records when each client connection closes (to time aborts)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.opened: list[float] = []
        self.closed: list[float] = []
        self.sockets: list[socket.socket] = []  # every relayed connection's two ends
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self.sockets += [client, upstream]
            self.opened.append(time.monotonic())
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        if from_client:
            self.closed.append(time.monotonic())
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """Reset every relayed connection at once, as a replica that dies does to its clients."""
        for s in self.sockets:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
                s.shutdown(socket.SHUT_RDWR)  # wakes the relay's threads blocked on it
                s.close()
            except OSError:
                pass
        self.sockets.clear()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the run (tests/pg.py); each test takes its own database."""
    server = PostgresServer(free_port())
    server.start()
    yield server
    server.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store on each backend: a SQLite file path, or a new PostgreSQL database's URL."""
    if request.param == "sqlite":
        return str(tmp_path / "s.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.database()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway redis-server (Debian's `redis-server`, make redis-env) on a free loopback port."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


TINY_CLASSIFIER_RUN = ("--scenes", "6", "--val", "2", "--steps", "3", "--batch", "4", "--imgsz", "64",
                       "--eval-every", "2")  # fmt: skip


@pytest.fixture(scope="session")
def classifier_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Image-classifier weights from a tiny real training run (training.classifier, a few steps)."""
    from training.classifier import main

    out = tmp_path_factory.mktemp("classifier") / "tiny-cnn.pt"
    main([str(out), *TINY_CLASSIFIER_RUN])
    return out
