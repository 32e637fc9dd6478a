"""CPU cores used per process role, once a second: where a benchmark host's CPU goes.

python -m bench.proc_cpu [--seconds 120] [--interval 1]

Roles: r0, r1 ... (the router's processes, by `server.workers` index), vllm, instant
(bench._instant), client (bench client processes), bench. Each line gives, per role, the cores used
over the interval / processes / threads, the 1-minute load average, and router processes that
appeared (a restarted worker shows as NEW). Linux only (reads /proc); it found the 8-worker
collapse in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")


def role(pid: str) -> str | None:
    """What a process is, from its command line (and worker index), or None to skip it."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    if "router.cli.main serve" in cmd or "roadwork-router serve" in cmd:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            env = []
        index = [e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"ROADWORK__SERVER__WORKER_INDEX=")]
        return f"r{index[0] if index else 0}"
    for needle, name in (("bench._instant", "instant"), ("multiprocessing", "client"), ("vllm", "vllm")):
        if needle in cmd:
            return name
    return "bench" if "bench." in cmd else None


def cpu_ticks(pid: int | str) -> tuple[int, int] | None:
    """A process's user + system CPU so far (clock ticks, HZ a second) and its threads; None once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12]), int(fields[17])


def snapshot() -> dict[int, tuple[str, int, int]]:
    """pid -> (role, CPU ticks so far, threads)."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or (name := role(pid)) is None or (cpu := cpu_ticks(pid)) is None:
            continue
        out[int(pid)] = (name, *cpu)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--interval", type=float, default=1.0)
    args = p.parse_args()
    start = then = time.time()
    prev = snapshot()
    seen = set(prev)
    while time.time() - start < args.seconds:
        time.sleep(args.interval)
        cur, now = snapshot(), time.time()
        cores: dict[str, float] = defaultdict(float)
        procs: dict[str, int] = defaultdict(int)
        threads: dict[str, int] = defaultdict(int)
        for pid, (name, ticks, nth) in cur.items():
            before = prev[pid][1] if pid in prev else ticks
            cores[name] += (ticks - before) / HZ / (now - then)
            procs[name] += 1
            threads[name] += nth
        new = [f"{cur[p][0]}:{p}" for p in cur if p not in seen and cur[p][0].startswith("r")]
        seen |= set(cur)
        load = Path("/proc/loadavg").read_text().split()[0]
        parts = " ".join(f"{n}={cores[n]:.2f}/{procs[n]}p/{threads[n]}t" for n in sorted(cores))
        print(f"{now - start:6.1f}s load={load} {parts}{' NEW ' + ','.join(new) if new else ''}", flush=True)
        prev, then = cur, now


if __name__ == "__main__":
    main()
