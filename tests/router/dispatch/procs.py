"""Process helpers for the tests that launch real engine servers: live descendants, a port's holder."""

from __future__ import annotations

from pathlib import Path

from engines.servers import listening_sockets, socket_holders


def _stat(pid: int) -> list[str] | None:
    """A live (non-zombie) process's /proc/<pid>/stat fields after the name, None otherwise."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return None if fields[0] == "Z" else fields


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, their children, ...)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _holder(port: int) -> int:
    """The one process listening on 127.0.0.1:`port`."""
    pids = socket_holders(listening_sockets("127.0.0.1", port))
    assert len(pids) == 1, pids
    return pids[0]
