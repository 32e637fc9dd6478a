"""The orphan guard (engines/orphan_guard.py) on real processes: a stand-in server's whole process group
dies with the process that launched it, even one that ignores SIGTERM; exit codes pass through; and
`port_held` names who listens on a port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engines.servers import ManagedServer, ServerStartError, port_held, process_group_alive
from tests.conftest import ROOT, free_port

# A launcher process: starts the test_vllm stand-in (an http.server that ignores SIGTERM, plus a
# `sleep` child) under the guard, writes the guard's PID, then waits to be killed.
LAUNCHER = """
import asyncio, sys
from pathlib import Path
from tests.engines.test_vllm import _stand_in

async def main() -> None:
    tmp = Path(sys.argv[1])
    server = _stand_in(tmp, ignore_sigterm=True, child_pid_file=tmp / "child.pid")
    server.orphan_grace_s = float(sys.argv[2])
    await server.start(timeout_s=30)
    (tmp / "guard.pid").write_text(str(server.pid))
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def _wait_for(path: Path, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and (text := path.read_text().strip()):
            return text
        time.sleep(0.05)
    raise TimeoutError(f"{path} never written")


def test_a_sigkilled_launcher_takes_the_guarded_group_down(tmp_path: Path) -> None:
    grace = 1.0
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path), str(grace)], cwd=ROOT)
    try:
        guard = int(_wait_for(tmp_path / "guard.pid"))
        child = int(_wait_for(tmp_path / "child.pid"))
        assert process_group_alive(guard) and os.getpgid(child) == guard
        launcher.kill()  # SIGKILL: no handler, no cleanup in the launcher
        launcher.wait()
        killed = time.monotonic()
        while process_group_alive(guard) and time.monotonic() - killed < grace + 15:
            time.sleep(0.05)
        gone_after = time.monotonic() - killed
    finally:
        launcher.kill()
    assert not process_group_alive(guard), "the guarded server outlived its launcher"
    # The http.server ignores SIGTERM: only the SIGKILL after the grace ends it.
    assert gone_after >= grace * 0.9, gone_after
    print(f"guarded group gone {gone_after:.2f} s after the launcher's SIGKILL (grace {grace} s)")


async def test_the_guard_passes_the_servers_exit_code_through(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    server = ManagedServer(argv, os.environ, f"http://127.0.0.1:{free_port()}", tmp_path / "s.log", orphan_grace_s=1)
    with pytest.raises(ServerStartError, match=r"exited with 3(.|\n)*boom"):
        await server.start(timeout_s=20)
    await server.stop()


def test_port_held_names_the_listening_process() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert port_held("127.0.0.1", port) is None, "bound but not listening: a server could still bind"
        s.listen()
        held = port_held("127.0.0.1", port)
        assert held is not None and f"port {port}" in held and f"PID {os.getpid()} (" in held, held
        assert port_held("0.0.0.0", port) == held, "a wildcard bind collides with any address"
        assert port_held("127.0.0.2", port) is None, "another address of the same port is free"
    assert port_held("127.0.0.1", port) is None


def test_port_held_sees_a_wildcard_listener_from_a_specific_address() -> None:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        held = port_held("127.0.0.1", s.getsockname()[1])
    assert held is not None and f"PID {os.getpid()}" in held


def test_signal_numbers_become_shell_style_codes(tmp_path: Path) -> None:
    guard = ROOT / "engines" / "orphan_guard.py"
    argv = [sys.executable, str(guard), str(os.getpid()), "1", "--", "sh", "-c", "kill -9 $$"]
    assert subprocess.run(argv, timeout=30).returncode == 128 + signal.SIGKILL
