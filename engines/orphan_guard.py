"""Runs one engine server and takes its whole process group down when the router (its parent) dies.

Usage: `python orphan_guard.py PARENT_PID GRACE_S -- ARGV...`, started in a new process group (the
launcher's `process_group=0`). The guard asks the kernel for a signal when its parent dies
(`PR_SET_PDEATHSIG`), starts ARGV in its own group, and exits with the server's exit code. When the
parent dies, even by SIGKILL, it sends SIGTERM to the group (the API server, vLLM's EngineCore and
workers), then after GRACE_S SIGKILL to the group, itself included: nothing of the group outlives the
router. A SIGTERM to the group (the launcher's stop) reaches the server; the guard waits for it.

The kernel sends the signal when the *thread* that forked the guard exits: the launcher spawns from
the router's event-loop thread, which lives as long as the router does.

Run as a script by path, with no imports beyond the standard library: it starts in milliseconds.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from types import FrameType

PR_SET_PDEATHSIG = 1
PARENT_DIED = signal.SIGUSR1


def ask_for_parent_death_signal() -> None:
    """`prctl(PR_SET_PDEATHSIG, PARENT_DIED)`: the kernel signals us when the parent thread exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(PARENT_DIED), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def take_down_group(child: subprocess.Popen[bytes] | None, grace_s: float) -> None:
    """SIGTERM the process group, wait up to `grace_s` for the server, then SIGKILL the group (us too)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while child is not None and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(0, signal.SIGKILL)  # the engine's other processes, whatever they did with the SIGTERM


def main(argv: list[str]) -> int:
    """Guard `argv[3:]` (after `--`) for parent `argv[0]`; returns the server's exit code."""
    parent, grace_s, sep, *command = argv
    if sep != "--" or not command:
        raise SystemExit("usage: orphan_guard.py PARENT_PID GRACE_S -- ARGV...")
    child: subprocess.Popen[bytes] | None = None

    def parent_died(signum: int, frame: FrameType | None) -> None:
        take_down_group(child, float(grace_s))

    signal.signal(PARENT_DIED, parent_died)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # the launcher's stop: the server gets it too
    ask_for_parent_death_signal()
    if os.getppid() != int(parent):  # the parent died before the kernel could tell us
        take_down_group(None, 0.0)
    child = subprocess.Popen(command)  # inherits our group, stdin, stdout and stderr
    code = child.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
