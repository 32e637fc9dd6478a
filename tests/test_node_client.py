"""Node.js client test: the real router in a subprocess, driven by tests/node/client.mjs over gRPC.

Needs Node.js and the npm packages in tests/node (`cd tests/node && npm ci`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

pytestmark = [pytest.mark.node, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
NODE_DIR = REPO / "tests" / "node"
CLIENT = NODE_DIR / "client.mjs"
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


@pytest.fixture(scope="module")
def router_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Starts `python -m router.cli serve` on a free port; yields (address, log file)."""
    tmp = tmp_path_factory.mktemp("node-router")
    port = _free_port()
    env = {
        **os.environ,
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
            [sys.executable, "-m", "router.cli", "serve"],
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


def test_node_client(request: pytest.FixtureRequest) -> None:
    # Checked before the router starts: a missing npm install fails fast (never skips).
    node_bin = shutil.which("node")
    assert node_bin, "Node.js (`node`) is not on PATH; install Node.js 20+ to run the Node client test"
    assert (NODE_DIR / "node_modules").is_dir(), (
        f"{NODE_DIR / 'node_modules'} is missing: run `npm ci` in tests/node (cd tests/node && npm ci)"
    )
    addr, log_path = request.getfixturevalue("router_server")
    try:
        proc = subprocess.run(
            [node_bin, str(CLIENT.relative_to(REPO)), addr, str(SAMPLE_IMAGE)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"node client did not finish in {CLIENT_TIMEOUT_S:.0f} s\nstdout:\n{exc.stdout!r}\nstderr:\n{exc.stderr!r}"
            f"\nrouter log:\n{_read_log(log_path)}"
        )
    report = (
        f"node client exit code {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        f"\nrouter log:\n{_read_log(log_path)}"
    )
    assert proc.returncode == 0, report
    lines = proc.stdout.strip().splitlines()
    assert lines, report
    try:
        last = json.loads(lines[-1])
    except json.JSONDecodeError:
        pytest.fail(f"last stdout line is not JSON\n{report}")
    assert last == {"step": "all", "ok": True}, report
