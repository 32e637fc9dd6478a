"""Launched engines die with the router: the router as its own process launches a real vLLM (CPU)
server; a second router on the same config fails start-up naming the port and the holder's PID; the
first is SIGKILLed and no engine process is left; a restart launches (and is served by) its own."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from engines.servers import listening_sockets, socket_holders
from router._proto.roadwork.v1 import router_pb2 as pb
from tests.conftest import SAMPLE, free_port, require_vllm_python
from tests.router.dispatch.test_launcher import _launch
from tests.router.state.test_durability import RouterProcess, routers  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow


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
    pids = socket_holders(listening_sockets("127.0.0.1", port))
    assert len(pids) == 1, pids
    return pids[0]


def _engine_answer(r: RouterProcess) -> pb.DoneEvent:
    """A short strict Ask (no degraded answer) on the sample image."""
    ask = pb.AskRequest(
        image=SAMPLE.read_bytes(), question="Cones?", strict=True, generation=pb.GenerationOptions(max_tokens=4)
    )
    return list(r.stub.Ask(ask, timeout=120))[-1].done


def test_router_sigkill_leaves_no_engine_and_a_restart_launches_its_own(
    tiny_model: Path,
    tmp_path: Path,
    routers: list[RouterProcess],  # noqa: F811
) -> None:
    entry = _launch(tiny_model, require_vllm_python())[0]
    port = int(str(entry["port"]))
    env = {
        "ROADWORK__POOLS__VLLM__ENGINE": "vllm",
        "ROADWORK__POOLS__VLLM__LAUNCH": json.dumps([entry]),
        "ROADWORK__POOLS__VLLM__EXTRA_BODY": '{"ignore_eos": true}',
        "ROADWORK__ROUTING__SINGLE_SHOT": '["vllm"]',
    }
    first = RouterProcess(tmp_path, free_port(), "first", **env)
    routers.append(first)
    first.wait_serving(600)
    engine = descendants(first.proc.pid)
    api_server = _holder(port)
    assert api_server in engine and len(engine) >= 3, engine  # guard, API server, EngineCore

    # Another router on the same config: the port is taken by a server it did not start.
    (tmp_path / "rival").mkdir()
    rival = RouterProcess(tmp_path / "rival", free_port(), "rival", **env)
    routers.append(rival)
    assert rival.proc.wait(300) != 0
    assert f"port {port} is already held by PID {api_server} (" in rival.tail(), rival.tail()
    assert _engine_answer(first).route.engine == pb.ENGINE_VLLM

    first.proc.kill()
    first.proc.wait()
    killed = time.monotonic()
    while any(_stat(p) for p in engine) and time.monotonic() - killed < 60:
        time.sleep(0.1)
    gone_after = time.monotonic() - killed
    left = sorted(p for p in engine if _stat(p))
    assert not left, f"engine processes outlived the router: {left}"
    assert not listening_sockets("127.0.0.1", port)

    second = RouterProcess(tmp_path, free_port(), "second", **env)  # the first one's store
    routers.append(second)
    serving_s = second.wait_serving(600)
    relaunched = descendants(second.proc.pid)
    assert _holder(port) in relaunched and not relaunched & engine
    done = _engine_answer(second)
    assert done.route.engine == pb.ENGINE_VLLM and done.usage.completion_tokens == 4 and not done.degraded
    rc, exit_s = second.signal(signal.SIGTERM)
    assert rc == 0 and not any(_stat(p) for p in relaunched), "a clean shutdown left engine processes"
    print(f"\nengine processes ({len(engine)}) gone {gone_after:.1f} s after the router's SIGKILL; restart SERVING"
          f" in {serving_s:.0f} s; SIGTERM exit {exit_s:.1f} s")  # fmt: skip
