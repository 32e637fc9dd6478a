"""vLLM: launch command, /metrics parsing, and ManagedServer (on a stand-in server, then on real vLLM CPU)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from engines import vllm
from engines.prometheus import EngineLoad, fetch_metrics
from engines.servers import LaunchSpec, ManagedServer, ServerStartError, process_group_alive
from tests.conftest import free_port, require_vllm_python

# Captured from vLLM 0.32 (CPU build, tiny model) after two requests sharing a prefix, plus a second engine
# (data parallel) with other values. HELP/TYPE as the server writes them, `_created` gauges included.
V1 = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="tiny"} 0.0
vllm:num_requests_running{engine="1",model_name="tiny"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="tiny"} 0.0
vllm:num_requests_waiting{engine="1",model_name="tiny"} 2.0
# HELP vllm:num_requests_waiting_by_reason Number of waiting requests by reason.
# TYPE vllm:num_requests_waiting_by_reason gauge
vllm:num_requests_waiting_by_reason{engine="1",model_name="tiny",reason="capacity"} 2.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="tiny"} 0.0
vllm:kv_cache_usage_perc{engine="1",model_name="tiny"} 0.5
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="tiny"} 198.0
vllm:prefix_cache_queries_total{engine="1",model_name="tiny"} 2.0
# HELP vllm:prefix_cache_queries_created Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_created gauge
vllm:prefix_cache_queries_created{engine="0",model_name="tiny"} 1.7957360060852067e+09
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="tiny"} 96.0
vllm:prefix_cache_hits_total{engine="1",model_name="tiny"} 4.0
"""

# vLLM 0.9/0.10 exposed the deprecated names next to the new ones (vllm/v1/metrics/loggers.py).
TRANSITION = """\
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.DEPRECATED: Use vllm:kv_cache_usage_perc instead.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{engine="0",model_name="m"} 0.9
# HELP vllm:gpu_prefix_cache_queries_total GPU prefix cache queries.DEPRECATED: Use vllm:prefix_cache_queries instead.
# TYPE vllm:gpu_prefix_cache_queries_total counter
vllm:gpu_prefix_cache_queries_total{engine="0",model_name="m"} 999.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 100.0
"""  # noqa: E501

# The v0 engine (vLLM <= 0.8): old names only, and a hit-rate gauge.
V0 = """\
# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 4.0
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="m"} 0.125
# HELP vllm:gpu_prefix_cache_hit_rate GPU prefix cache block hit rate.
# TYPE vllm:gpu_prefix_cache_hit_rate gauge
vllm:gpu_prefix_cache_hit_rate{model_name="m"} 0.6
"""


def test_launch_command() -> None:
    spec = LaunchSpec(model="/models/qwen", host="0.0.0.0", port=8011, gpu_ids=(2, 3), tensor_parallel=2,
                      served_model_name="qwen", extra_args=("--max-model-len", "4096"),
                      extra_env=(("VLLM_CPU_KVCACHE_SPACE", "1"),))  # fmt: skip
    argv, env = vllm.launch_command(spec, python="/opt/vllm/bin/python")
    assert argv == [
        "/opt/vllm/bin/python", "-m", "vllm.entrypoints.openai.api_server", "--model", "/models/qwen",
        "--host", "0.0.0.0", "--port", "8011", "--tensor-parallel-size", "2", "--served-model-name", "qwen",
        "--enable-prompt-tokens-details", "--enable-prefix-caching", "--max-model-len", "4096",
    ]  # fmt: skip
    assert env["CUDA_VISIBLE_DEVICES"] == "2,3" and env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert spec.url == "http://127.0.0.1:8011"


def test_launch_command_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    argv, env = vllm.launch_command(LaunchSpec(model="m"))
    assert argv[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    assert "--served-model-name" not in argv and argv[-2:] == [
        "--enable-prompt-tokens-details",
        "--enable-prefix-caching",
    ]
    assert "CUDA_VISIBLE_DEVICES" not in env and env["PATH"] == os.environ["PATH"]


@pytest.mark.parametrize("kw", [{"tensor_parallel": 2, "gpu_ids": (0,)}, {"tensor_parallel": 0}, {"port": 70000}])
def test_launch_spec_rejects_impossible_values(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LaunchSpec(model="m", **kw)  # type: ignore[arg-type]


def test_parse_load_v1_sums_engines() -> None:
    load = vllm.parse_load(V1)
    assert load == EngineLoad(running=3.0, waiting=2.0, kv_cache_usage=0.25, prefix_cache_hits=100.0,
                              prefix_cache_queries=200.0)  # fmt: skip
    assert load.hit_rate_since() == 0.5


def test_parse_load_prefers_new_names_to_deprecated_ones() -> None:
    load = vllm.parse_load(TRANSITION)
    assert load.kv_cache_usage == 0.25 and load.prefix_cache_queries == 100.0  # never 0.9 / 999 or a sum


def test_parse_load_v0_names() -> None:
    assert vllm.parse_load(V0) == EngineLoad(running=4.0, kv_cache_usage=0.125, prefix_cache_hit_rate=0.6)


def test_missing_metrics_are_none_not_zero() -> None:
    assert vllm.parse_load("# TYPE process_open_fds gauge\nprocess_open_fds 12.0\n") == EngineLoad()


# -- ManagedServer on a stand-in: Python's http.server, "healthy" once it serves a file named `health` --


def _stand_in(tmp: Path, *, ignore_sigterm: bool = False, child_pid_file: Path | None = None) -> ManagedServer:
    """A ManagedServer for `python -m http.server` over `tmp`, optionally spawning a long-lived child first."""
    (tmp / "health").write_text("ok")
    port = free_port()
    serve = f"{sys.executable} -m http.server --bind 127.0.0.1 --directory {tmp} {port}"
    if ignore_sigterm:
        serve = f"{sys.executable} -c \"import signal,runpy,sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); sys.argv=['x','--bind','127.0.0.1','--directory','{tmp}','{port}']; runpy.run_module('http.server', run_name='__main__')\""  # noqa: E501
    script = f"sleep 300 & echo $! > {child_pid_file}; exec {serve}" if child_pid_file else f"exec {serve}"
    return ManagedServer(["sh", "-c", script], os.environ, f"http://127.0.0.1:{port}", tmp / "server.log")


def _running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


async def _until(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait until `cond()` holds, at most `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        await asyncio.sleep(0.05)


async def test_managed_server_kill_restart_stop_reaches_the_whole_group(tmp_path: Path) -> None:
    child_file = tmp_path / "child.pid"
    server = _stand_in(tmp_path, child_pid_file=child_file)
    try:
        await server.start(timeout_s=20)
        assert server.alive and await server.healthy() and server.starts == 1
        first_pid, first_child = server.pid, int(child_file.read_text())
        assert first_pid is not None and _running(first_child)
        os.kill(first_pid, signal.SIGKILL)  # the server crashes; its child lives on
        await _until(lambda: not server.alive)
        assert not server.alive and server.returncode == -signal.SIGKILL and not await server.healthy()
        assert _running(first_child)
        await server.restart(timeout_s=20)
        assert server.alive and server.pid != first_pid and server.starts == 2 and await server.healthy()
        await _until(lambda: not _running(first_child))
        assert not _running(first_child)  # restart cleared the dead server's process group
        second_child = int(child_file.read_text())
    finally:
        await server.stop(grace_s=5)
    assert server.pid is not None and not process_group_alive(server.pid)
    assert not server.alive and not _running(second_child)
    assert await server.stop() == server.returncode  # stopping twice is harmless


async def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    server = _stand_in(tmp_path, ignore_sigterm=True)
    await server.start(timeout_s=20)
    started = time.monotonic()
    assert await server.stop(grace_s=1.0) == -signal.SIGKILL
    assert 1.0 <= time.monotonic() - started < 5.0


async def test_exit_during_startup_reports_the_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('error: unrecognized arguments: --bogus'); sys.exit(2)"]
    server = ManagedServer(argv, os.environ, f"http://127.0.0.1:{free_port()}", tmp_path / "s.log")
    with pytest.raises(ServerStartError, match=r"exited with 2(.|\n)*unrecognized arguments: --bogus"):
        await server.start(timeout_s=20)
    await server.stop()


async def test_never_healthy_times_out(tmp_path: Path) -> None:
    server = _stand_in(tmp_path)
    (tmp_path / "health").unlink()  # http.server answers 404
    try:
        with pytest.raises(TimeoutError, match=r"not healthy after 1\.5 s"):
            await server.start(timeout_s=1.5)
        assert server.alive
    finally:
        await server.stop(grace_s=5)


# -- the real thing: vLLM's CPU build on the tiny model (vllm.CPU_ARGS, as tests/conftest.py's VLLMServer) --


@pytest.mark.slow
async def test_vllm_cpu_under_managed_server(tiny_model: Path, tmp_path: Path) -> None:
    python = require_vllm_python()
    spec = LaunchSpec(model=str(tiny_model), port=free_port(), served_model_name="tiny", extra_args=vllm.CPU_ARGS,
                      extra_env=vllm.CPU_ENV)  # fmt: skip
    server = vllm.managed_server(spec, tmp_path / "vllm.log", python=python, nice=10)
    try:
        await server.start(timeout_s=240)
        async with httpx.AsyncClient(base_url=spec.url, timeout=60) as client:
            body = {"model": "tiny", "messages": [{"role": "user", "content": "cone " * 80}], "max_tokens": 2}
            usage = (await client.post("/v1/chat/completions", json=body)).json()["usage"]
        assert "cached_tokens" in usage["prompt_tokens_details"]  # --enable-prompt-tokens-details is on
        load = vllm.parse_load(await fetch_metrics(spec.url, vllm.METRICS_PATH))
        assert isinstance(load.running, float) and isinstance(load.waiting, float)
        assert load.kv_cache_usage is not None and 0.0 <= load.kv_cache_usage <= 1.0
        assert load.prefix_cache_queries is not None and load.prefix_cache_queries >= usage["prompt_tokens"]
        first_pid = server.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)  # the API server crashes; its engine-core process outlives it
        await _until(lambda: not server.alive)
        assert not server.alive and not await server.healthy()
        await server.restart(timeout_s=240)
        assert server.alive and server.pid != first_pid and await server.healthy()
        assert not process_group_alive(first_pid)  # no orphaned engine core from the first run
    finally:
        await server.stop()
    assert not server.alive
