"""Processes a benchmark runs: a vLLM (CPU) server, roadwork-router, and the peer routers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from engines import vllm
from engines.servers import LaunchSpec, ManagedServer


def scene_jpegs(n: int, seed: int = 11) -> list[bytes]:
    """n distinct procedurally drawn 640x480 street scenes as JPEG bytes."""
    import io

    import numpy as np

    from training.synth import render_scene

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        render_scene(rng)[0].save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def default_vllm_python() -> str:
    """$ROADWORK_VLLM_PYTHON, else the checkout's .venv-vllm (what `make test` builds)."""
    return os.environ.get("ROADWORK_VLLM_PYTHON", str(Path(".venv-vllm/bin/python").absolute()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Process:
    """A started server: its address and how to stop it."""

    name: str
    url: str
    server: ManagedServer

    async def stop(self) -> None:
        await self.server.stop(grace_s=10)


async def start_vllm(
    python: str, workdir: Path, model: Path | None = None, extra_args: tuple[str, ...] = ()
) -> Process:
    """vLLM's OpenAI server on the tiny local model (the test suite's recipe), niced."""
    from engines.tiny_model import build_tiny_model

    if model is None:
        model = await asyncio.to_thread(build_tiny_model, workdir / "tiny")
    spec = LaunchSpec(
        model=str(model),
        port=free_port(),
        served_model_name="tiny",
        extra_args=(*vllm.CPU_ARGS, *extra_args),
        extra_env=vllm.CPU_ENV,
    )
    server = vllm.managed_server(spec, workdir / "vllm.log", python=python, nice=10)
    await server.start(600)
    return Process("vllm", spec.url, server)


async def vllm_server(
    url: str | None, python: str, workdir: Path, extra_args: tuple[str, ...] = ()
) -> tuple[str, Process | None]:
    """The vLLM to measure against: the server at `url` if given, else one started here (returned to stop)."""
    if url:
        return url, None
    started = await start_vllm(python, workdir, extra_args=extra_args)
    return started.url, started


def vllm_routes(url: str, model: str = "") -> dict[str, str]:
    """Router overrides: every request kind to one vLLM pool at `url`, each answer exactly max_tokens long."""
    return {
        "ROADWORK__POOLS__VLLM__ENGINE": "vllm",
        "ROADWORK__POOLS__VLLM__REPLICAS": json.dumps([url]),
        "ROADWORK__POOLS__VLLM__MODEL": model,
        "ROADWORK__POOLS__VLLM__EXTRA_BODY": '{"ignore_eos": true}',
        "ROADWORK__ROUTING__SINGLE_SHOT": '["vllm"]',
        "ROADWORK__ROUTING__MULTI_TURN": '["vllm"]',
        "ROADWORK__ROUTING__BATCH": '["vllm"]',
    }


async def start_router(env: dict[str, str]) -> Process:
    """`roadwork-router serve` in its own process; returns once gRPC health says SERVING and, with
    ROADWORK__SERVER__WORKERS = N, all N processes listen (extra ones bind once warmed up)."""
    port = free_port()
    full = {**os.environ, "ROADWORK__SERVER__METRICS_PORT": "0", **env, "ROADWORK__SERVER__PORT": str(port)}
    log = Path(env.get("ROADWORK__STORAGE__PATH", "/tmp/x")).with_suffix(".router.log")
    server = ManagedServer([sys.executable, "-m", "router.cli.main", "serve"], full, f"http://127.0.0.1:{port}", log)
    server.healthy = _grpc_serving(f"127.0.0.1:{port}")  # type: ignore[method-assign]
    await server.start(600)
    workers = int(env.get("ROADWORK__SERVER__WORKERS", "1"))
    deadline = time.monotonic() + 300
    while listeners(port) < workers:
        if time.monotonic() > deadline:
            await server.stop(grace_s=10)
            raise RuntimeError(f"only {listeners(port)} of {workers} router processes listen after 300 s")
        await asyncio.sleep(0.5)
    return Process("roadwork-router", f"127.0.0.1:{port}", server)


def listeners(port: int) -> int:
    """Sockets listening on this TCP port (one per router process with SO_REUSEPORT)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        count += sum(1 for r in rows if r.split()[1].endswith(f":{port:04X}") and r.split()[3] == "0A")
    return count


def _grpc_serving(addr: str):  # type: ignore[no-untyped-def]
    async def healthy() -> bool:
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                resp = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            except grpc.aio.AioRpcError:
                return False
            return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)

    return healthy


async def start_peer(name: str, argv: list[str], worker: str) -> Process:
    """sglang-router or vllm-router in front of `worker`, round-robin, metrics on a free local port."""
    port = free_port()
    args = [*argv, "--host", "127.0.0.1", "--port", str(port), "--worker-urls", worker, "--policy", "round_robin",
            "--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port())]  # fmt: skip
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"{name}-{port}.log"
    server = ManagedServer(args, dict(os.environ), f"http://127.0.0.1:{port}", log, health_path="/v1/models")
    await server.start(120)
    return Process(name, server.base_url, server)


async def vllm_metric(url: str, name: str) -> float:
    """The sum of one metric's samples on a vLLM server's /metrics."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(url + "/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total
