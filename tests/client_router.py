"""A real router in a subprocess on loopback (quick-start embedded engine, max_queue 0), and a client
program run against it: shared by the Node and Go client tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
SAMPLE_IMAGE = Path("router") / "assets" / "sample_roadwork.jpg"
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
CLIENT_TIMEOUT_S = 300.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-20000:]
    except OSError:
        return ""


def _wait_serving(addr: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer yet"
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"router exited with code {proc.returncode} before SERVING; log:\n{_read_log(log_path)}")
            try:
                resp = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2.0)
            except grpc.RpcError as exc:
                last = f"{exc.code().name}: {exc.details()}"
            else:
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
            time.sleep(0.25)
    pytest.fail(f"router not SERVING after {READY_TIMEOUT_S:.0f} s (last: {last}); log:\n{_read_log(log_path)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


@contextmanager
def serve(tmp: Path, **overrides: str) -> Iterator[tuple[str, Path]]:
    """Runs `python -m router.cli.main serve` on a free port (plus ROADWORK__ overrides); yields (address, log file)."""
    port = _free_port()
    env = {
        **os.environ,
        **overrides,
        "ROADWORK__SERVER__PORT": str(port),
        "ROADWORK__SERVER__METRICS_PORT": "0",
        "ROADWORK__STORAGE__PATH": str(tmp / "router.sqlite3"),
        "PYTHONUNBUFFERED": "1",
        # No queue: an Ask while another generates is QUEUE_FULL at once, so the client reads a RetryInfo.
        **{f"ROADWORK__POOLS__{p}__MAX_QUEUE": "0" for p in ("VLLM", "SGLANG", "LMDEPLOY")},
    }
    log_path = tmp / "router.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "router.cli.main", "serve"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    addr = f"127.0.0.1:{port}"
    try:
        _wait_serving(addr, proc, log_path)
        yield addr, log_path
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def router_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The quick-start router (the demo VLM on the embedded engine); yields (address, log file)."""
    with serve(tmp_path_factory.mktemp("client-router")) as running:
        yield running


def run_client(argv: list[str], addr: str, log_path: Path, what: str, *extra: str) -> None:
    """Run a client program (`argv` + address + sample image + `extra`) and check it ends with {"step": "all"}."""
    try:
        proc = subprocess.run(
            [*argv, addr, str(SAMPLE_IMAGE), *extra], cwd=REPO, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{what} did not finish in {CLIENT_TIMEOUT_S:.0f} s\nstdout:\n{exc.stdout!r}\nstderr:\n{exc.stderr!r}"
            f"\nrouter log:\n{_read_log(log_path)}"
        )
    report = (
        f"{what} exit code {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        f"\nrouter log:\n{_read_log(log_path)}"
    )
    assert proc.returncode == 0, report
    print(proc.stdout, end="")  # the steps, for -s / -rP
    lines = proc.stdout.strip().splitlines()
    assert lines, report
    try:
        last = json.loads(lines[-1])
    except json.JSONDecodeError:
        pytest.fail(f"last stdout line is not JSON\n{report}")
    assert last == {"step": "all", "ok": True}, report
