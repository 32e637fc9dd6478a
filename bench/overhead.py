"""Routing overhead and cancellation: one vLLM reached directly, through roadwork-router (gRPC) and
through the Rust peers sglang-router and vllm-router (HTTP), side by side in one run.

python -m bench.overhead [--concurrency 1 16] [--rounds 80] [--tokens 16] [--cancel-trials 20]
    [--router-clients aiohttp lean] [--sglang-router /venv/bin/python] [--vllm-router /venv/bin/vllm-router]
    [--json FILE]

`--router-clients aiohttp lean` runs one router per engine HTTP client (`pools.<name>.http_client`),
interleaved with the others like every target.

Every target sends the byte-identical chat request (the prompt the router builds for the bundled
sample image, checked by comparing prompt token counts), greedy, `ignore_eos`, so all do the same
engine work. Targets are interleaved round by round (order rotated each round); at concurrency 1
the added latency is paired by round (target minus direct, same round). Above one client, a round's
requests come from `--client-procs` load generator processes, each holding the same clients (httpx
for the HTTP targets, grpc.aio for the router), and each round reports the busiest one's CPU share:
one process driving 16 httpx streams saturated and made the router look faster than direct. The router's detection is
a cache hit after the first request, so this measures routing. Cancellation: a client reads 5
chunks of a 400-token stream and disconnects; the engine's generated tokens are read from its
`vllm:generation_tokens_total`. Trials where vLLM delivered the chunks in one burst (a 2-core
artefact: no gap between the first and fifth chunk) are dropped and counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx

from bench._servers import (
    Process,
    default_vllm_python,
    start_peer,
    start_router,
    vllm_metric,
    vllm_routes,
    vllm_server,
)
from bench.spans import EXPORT_SOON, Receiver, router_share
from engines.base import GenerationRequest, ImagePart
from engines.openai_http import OpenAIHTTPEngine
from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc

SAMPLE = Path(__file__).resolve().parents[1] / "router" / "assets" / "sample_roadwork.jpg"
QUESTION = "Is there active roadwork, and which lanes are affected?"
Request = Callable[[int, int], Awaitable[tuple[float, float, int]]]  # (max_tokens, cancel_after) -> ttft, total, prompt


async def _exact_payload(config_env: dict[str, str], tokens: int, model: str = "tiny") -> dict[str, Any]:
    """The chat request the router sends for (sample image, QUESTION), built with the router's own code
    and config (this process's ROADWORK__ overrides too, as the router process inherits them).

    The ensemble is loaded first: an unloaded fused runner (the GPU default) fails every vote, and the
    summary then read "failed" for each member where the router's read its boxes (the 54 vs 69 prompt
    tokens seen on the H200)."""
    from router.config import load_config
    from router.flow.detection import build_ensemble
    from router.flow.prompting import build_messages

    config = load_config(env={k: v for k, v in os.environ.items() if k.startswith("ROADWORK__")} | config_env)
    ensemble = build_ensemble(config)
    try:
        await ensemble.warmup()
        data = SAMPLE.read_bytes()
        from router.flow.images import decode_image

        image = decode_image(data, max_bytes=1 << 30, max_pixels=1 << 30)
        assert image.pixels is not None
        detection = await ensemble.detect(image.pixels, data, image.sha256)
    finally:
        ensemble.close()
    messages = build_messages(system_prompt=config.generation.system_prompt, detection=detection,
                              question=QUESTION, history=[], image=ImagePart(data, image.mime))  # fmt: skip
    engine = OpenAIHTTPEngine("http://unused", model, extra_body={"ignore_eos": True})
    body = engine.payload(GenerationRequest(messages=messages, max_tokens=tokens, temperature=0.0))
    await engine.close()
    return body


def _http_target(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> Request:
    async def request(max_tokens: int, cancel_after: int) -> tuple[float, float, int]:
        t0 = time.perf_counter()
        ttft, chunks, prompt = 0.0, 0, 0
        async with client.stream("POST", url + "/v1/chat/completions", json=body | {"max_tokens": max_tokens}) as resp:
            resp.raise_for_status()
            async for line in resp.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if event.get("usage"):
                    prompt = event["usage"]["prompt_tokens"]
                if event.get("choices") and event["choices"][0]["delta"].get("content"):
                    chunks += 1
                    ttft = ttft or time.perf_counter() - t0
                    if cancel_after and chunks == 1:
                        _CHUNK_TIMES.clear()
                    if cancel_after:
                        _CHUNK_TIMES.append(time.perf_counter())
                        if chunks >= cancel_after:
                            break  # leaving the block closes the connection
        return ttft, time.perf_counter() - t0, prompt

    return request


def _router_name(client: str, clients: list[str]) -> str:
    """The table's name for the router on `client`: plain when it is the only one."""
    return "roadwork-router" if len(clients) == 1 else f"router ({client})"


def _router_target(stub: pb_grpc.RouterServiceStub, image: bytes) -> Request:
    async def request(max_tokens: int, cancel_after: int) -> tuple[float, float, int]:
        t0 = time.perf_counter()
        ttft, chunks, prompt = 0.0, 0, 0
        opts = pb.GenerationOptions(max_tokens=max_tokens, temperature=0.0)
        call = stub.Ask(pb.AskRequest(image=image, question=QUESTION, generation=opts), timeout=120)
        async for event in call:
            if event.HasField("delta"):
                chunks += 1
                ttft = ttft or time.perf_counter() - t0
                if cancel_after:
                    if chunks == 1:
                        _CHUNK_TIMES.clear()
                    _CHUNK_TIMES.append(time.perf_counter())
                    if chunks >= cancel_after:
                        call.cancel()
                        break
            elif event.HasField("done"):
                prompt = event.done.usage.prompt_tokens
        return ttft, time.perf_counter() - t0, prompt

    return request


async def _unfair(stub: pb_grpc.RouterServiceStub, image: bytes, body: dict[str, Any], prompts: dict[str, int]) -> str:
    """Why the comparison stops: the prompt sizes, the direct body's system prompt and the router's detection
    (the likely difference: the summary is built from a detection made in this process)."""
    detection = (await stub.Detect(pb.DetectRequest(image=image), timeout=60)).detection
    router_view = " ".join(str(detection).split())
    return (
        f"targets see different prompts (token counts {prompts}): not a fair comparison.\n"
        f"direct body's system prompt: {body['messages'][0]['content']!r}\nthe router's detection: {router_view}"
    )


_CHUNK_TIMES: list[float] = []  # the running cancellation trial's chunk arrival times


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Fire = Callable[[str, int, int], Awaitable[tuple[list[tuple[float, float, int]], float]]]


def _in_process(targets: dict[str, Request]) -> Fire:
    """`concurrency` requests to a target from this process; client CPU share not measured (0)."""

    async def fire(name: str, concurrency: int, tokens: int) -> tuple[list[tuple[float, float, int]], float]:
        return list(await asyncio.gather(*(targets[name](tokens, 0) for _ in range(concurrency)))), 0.0

    return fire


def _client_proc(conn: Any, urls: dict[str, str], routers: dict[str, str], body: dict[str, Any], image: bytes) -> None:
    """A load generator process: holds a client for every target and runs the rounds it is sent."""
    loop = asyncio.new_event_loop()

    async def setup() -> tuple[dict[str, Request], httpx.AsyncClient, list[grpc.aio.Channel]]:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=2.0)
        client = httpx.AsyncClient(timeout=120, limits=limits)
        channels = {n: grpc.aio.insecure_channel(u) for n, u in routers.items()}
        targets = {n: _http_target(client, u, body) for n, u in urls.items()}
        for n, channel in channels.items():  # one per router (`--router-clients aiohttp lean`: two)
            targets[n] = _router_target(pb_grpc.RouterServiceStub(channel), image)  # type: ignore[no-untyped-call]
        return targets, client, list(channels.values())

    async def one_round(name: str, n: int, tokens: int) -> list[tuple[float, float, int]]:
        return list(await asyncio.gather(*(targets[name](tokens, 0) for _ in range(n))))

    targets, client, channels = loop.run_until_complete(setup())
    conn.send("ready")
    while (cmd := conn.recv()) is not None:
        c0, t0 = time.process_time(), time.perf_counter()
        results = loop.run_until_complete(one_round(*cmd))
        conn.send((results, time.process_time() - c0, time.perf_counter() - t0))
    loop.run_until_complete(client.aclose())
    for channel in channels:
        loop.run_until_complete(channel.close())


class ClientProcesses:
    """Load generators in `procs` processes, each with the same clients (httpx for the HTTP targets,
    grpc.aio for the router): a round's requests are spread over them, so no one client process is
    saturated at 16 streams, and each reports its CPU share of the round (as `bench.scale` does)."""

    def __init__(self, procs: int, urls: dict[str, str], routers: dict[str, str], body: dict[str, Any],
                 image: bytes) -> None:  # fmt: skip
        ctx = mp.get_context("spawn")
        self._conns = []
        self._procs = []
        for _ in range(procs):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=_client_proc, args=(theirs, urls, routers, body, image), daemon=True)
            proc.start()
            self._conns.append(ours)
            self._procs.append(proc)
        for c in self._conns:
            assert c.recv() == "ready"

    def _round(self, name: str, concurrency: int, tokens: int) -> tuple[list[tuple[float, float, int]], float]:
        shares = [
            concurrency // len(self._conns) + (i < concurrency % len(self._conns)) for i in range(len(self._conns))
        ]
        busy = [(c, n) for c, n in zip(self._conns, shares, strict=True) if n]
        for c, n in busy:
            c.send((name, n, tokens))
        replies = [c.recv() for c, _ in busy]
        return [r for rep in replies for r in rep[0]], max(cpu / max(wall, 1e-9) for _, cpu, wall in replies)

    async def fire(self, name: str, concurrency: int, tokens: int) -> tuple[list[tuple[float, float, int]], float]:
        return await asyncio.to_thread(self._round, name, concurrency, tokens)

    def close(self) -> None:
        for c in self._conns:
            c.send(None)
        for p in self._procs:
            p.join(10)


async def _overhead(names: list[str], fire: Fire, concurrency: int, rounds: int, tokens: int) -> dict[str, Any]:
    per_round: dict[str, list[list[float]]] = {n: [] for n in names}
    busy: dict[str, float] = dict.fromkeys(names, 0.0)
    cpu: dict[str, float] = dict.fromkeys(names, 0.0)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t = time.perf_counter()
            results, share = await fire(name, concurrency, tokens)
            busy[name] += time.perf_counter() - t
            cpu[name] = max(cpu[name], share)
            per_round[name].append([total for _ttft, total, _p in results])
    out: dict[str, Any] = {"concurrency": concurrency, "rounds": rounds, "targets": {}}
    direct = [statistics.median(x) for x in per_round["direct"]]
    for name in names:
        lat = [v for x in per_round[name] for v in x]
        medians = [statistics.median(x) for x in per_round[name]]
        added = [(m - d) * 1e3 for m, d in zip(medians, direct, strict=True)]
        out["targets"][name] = {
            "p50_ms": statistics.median(lat) * 1e3,
            "p99_ms": _pct(lat, 0.99) * 1e3,
            "added_p50_ms": statistics.median(added),
            "added_p99_ms": _pct(added, 0.99),
            "requests_per_s": rounds * concurrency / busy[name],
            "busiest_client_cpu_share": cpu[name],
        }
    for name in names:
        out["targets"][name]["throughput_vs_direct"] = (
            out["targets"][name]["requests_per_s"] / out["targets"]["direct"]["requests_per_s"]
        )
    return out


async def _engine_idle(vllm_url: str, timeout_s: float = 30.0) -> None:
    """Wait until vLLM runs nothing (the aborted request is gone), then let its counters settle."""
    deadline = time.monotonic() + timeout_s
    running = await vllm_metric(vllm_url, "vllm:num_requests_running")
    while running > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        running = await vllm_metric(vllm_url, "vllm:num_requests_running")
    await asyncio.sleep(0.3)


async def _cancellation(targets: dict[str, Request], vllm_url: str, trials: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, request in targets.items():
        generated, dropped = [], 0
        for _ in range(trials):
            before = await vllm_metric(vllm_url, "vllm:generation_tokens_total")
            await request(400, 5)
            streamed = len(_CHUNK_TIMES) >= 5 and _CHUNK_TIMES[-1] - _CHUNK_TIMES[0] > 0.0005
            await _engine_idle(vllm_url)
            after = await vllm_metric(vllm_url, "vllm:generation_tokens_total")
            if streamed:
                generated.append(after - before)
            else:
                dropped += 1
        out[name] = {
            "trials": trials,
            "dropped_burst": dropped,
            "median_generated": statistics.median(generated) if generated else None,
            "max_generated": max(generated) if generated else None,
            "generated": generated,
        }
    direct = out["direct"]["median_generated"] or 0
    for row in out.values():
        row["median_over_direct"] = None if row["max_generated"] is None else row["median_generated"] - direct
    return out


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    procs: list[Process] = []
    try:
        vllm_url, vllm = await vllm_server(args.vllm_url, args.vllm_python, Path(args.workdir))
        procs += [vllm] if vllm else []
        env = vllm_routes(vllm_url, args.model)
        workers = {"ROADWORK__SERVER__WORKERS": str(args.router_workers)}
        receiver = Receiver() if args.spans else None
        traced = {"ROADWORK__OBSERVE__TRACE_ENDPOINT": receiver.start(), **EXPORT_SOON} if receiver else {}
        routers: dict[str, Process] = {}
        for client in args.router_clients:  # one router per engine HTTP client (pools.<name>.http_client)
            pools = {f"ROADWORK__POOLS__{p}__HTTP_CLIENT": client for p in ("VLLM", "SGLANG", "LMDEPLOY")}
            store = {"ROADWORK__STORAGE__PATH": str(Path(args.workdir) / f"bench-{client}.sqlite3")}
            name = _router_name(client, args.router_clients)
            service = {"OTEL_SERVICE_NAME": name} if receiver else {}
            routers[name] = router = await start_router(env | workers | pools | store | traced | service)
            procs.append(router)
        urls = {"direct": vllm_url}
        if args.sglang_router:
            peer = await start_peer(
                "sglang-router", [args.sglang_router, "-m", "sglang_router.launch_router"], vllm_url
            )
            procs.append(peer)
            urls["sglang-router"] = peer.url
        if args.vllm_router:
            peer = await start_peer("vllm-router", [args.vllm_router], vllm_url)
            procs.append(peer)
            urls["vllm-router"] = peer.url
        body = await _exact_payload(env, args.tokens, args.model)
        image = SAMPLE.read_bytes()
        # Idle connections expire before the servers' own keep-alive timeout (uvicorn: 5 s), so a
        # request never goes out on a connection the server is closing (an httpx ReadError).
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=2.0)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            channels = {n: grpc.aio.insecure_channel(r.url) for n, r in routers.items()}
            stubs = {n: pb_grpc.RouterServiceStub(c) for n, c in channels.items()}  # type: ignore[no-untyped-call]
            targets: dict[str, Request] = {n: _http_target(client, u, body) for n, u in urls.items()}
            targets |= {n: _router_target(stub, image) for n, stub in stubs.items()}
            stub = next(iter(stubs.values()))
            for _ in range(2):  # the second round is compared: a cold router's first detection may still differ
                prompts = {n: (await t(args.tokens, 0))[2] for n, t in targets.items()}  # also warms every path
            if len(set(prompts.values())) != 1:
                raise SystemExit(await _unfair(stub, image, body, prompts))
            # One client in this process; more from load generator processes (one process driving 16
            # httpx streams was the bottleneck on the H200, and made the router look 1.47x direct).
            routes = {n: r.url for n, r in routers.items()}
            pool = ClientProcesses(args.client_procs, urls, routes, body, image) if args.client_procs else None
            overhead, windows = [], []
            for c in args.concurrency:
                fire = pool.fire if pool is not None and c > 1 else _in_process(targets)
                started = time.time_ns()
                overhead.append(await _overhead(list(targets), fire, c, args.rounds, args.tokens))
                windows.append((started, time.time_ns()))
            if receiver is not None:
                await asyncio.sleep(2)  # the routers' last spans are exported
                spans = receiver.received()
                for block, window in zip(overhead, windows, strict=True):
                    block["router_share"] = {n: router_share(spans, n, window) for n in routers}
                receiver.stop()
            if pool is not None:
                pool.close()
            cancel = await _cancellation(targets, vllm_url, args.cancel_trials) if args.cancel_trials else {}
            for channel in channels.values():
                await channel.close()
        return {"prompt_tokens": prompts, "tokens": args.tokens, "overhead": overhead, "cancellation": cancel}
    finally:
        for p in reversed(procs):
            await p.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vllm-python", default=default_vllm_python(), help="the vLLM environment's python")
    p.add_argument("--vllm-url", help="use this running vLLM server instead of starting one")
    p.add_argument("--model", default="tiny", help="its served model name (with --vllm-url)")
    p.add_argument("--sglang-router", help="python of a venv with sglang-router installed")
    p.add_argument("--vllm-router", help="the vllm-router executable")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    p.add_argument("--client-procs", type=int, default=4,
                   help="load generator processes for concurrency > 1 (0: this process alone)")  # fmt: skip
    p.add_argument("--router-workers", type=int, default=1, help="roadwork-router processes on its port")
    p.add_argument("--router-clients", nargs="+", choices=["aiohttp", "lean"], default=["aiohttp"],
                   help="one roadwork-router per engine HTTP client (pools.<name>.http_client)")  # fmt: skip
    p.add_argument("--rounds", type=int, default=80)
    p.add_argument(
        "--spans",
        action="store_true",
        help="trace the routers (bench/spans.py): their time before and after the engine, per Ask",
    )
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--cancel-trials", type=int, default=20)
    p.add_argument("--workdir", default=tempfile.mkdtemp(prefix="roadwork-bench-"))
    p.add_argument("--json", type=Path, default=Path("bench/results/overhead.json"))
    args = p.parse_args()
    report = asyncio.run(_main(args))
    report["machine"] = f"{platform.node()} ({os.cpu_count()} cores), python {sys.version.split()[0]}"
    server = args.vllm_url or "vLLM CPU (tiny model), started here"
    print(f"routing overhead, one vLLM ({server}, model {args.model}), {args.tokens} tokens per request,"
          f" {report['machine']}")  # fmt: skip
    print(f"prompt tokens per target: {report['prompt_tokens']}")
    for block in report["overhead"]:
        print(f"\nconcurrency {block['concurrency']}, {block['rounds']} rounds, interleaved")
        cols = ("p50 ms", 8), ("p99 ms", 8), ("added p50", 10), ("added p99", 10), ("req/s", 7), ("vs direct", 9)
        print(f"{'target':>16} " + " ".join(f"{c:>{w}}" for c, w in cols) + " client cpu")
        for name, t in block["targets"].items():
            values = (t["p50_ms"], t["p99_ms"], t["added_p50_ms"], t["added_p99_ms"], t["requests_per_s"])
            print(f"{name:>16} " + " ".join(f"{v:>{w}.2f}" for v, (_c, w) in zip(values, cols, strict=False))
                  + f" {t['throughput_vs_direct']:>9.2f} {t['busiest_client_cpu_share']:>10.2f}")  # fmt: skip
    for block in report["overhead"]:
        for name, share in block.get("router_share", {}).items():
            stages = ", ".join(f"{s} {v['p50_ms']}" for s, v in share["steps_before"].items())
            print(f"\n{name} at concurrency {block['concurrency']} ({share['asks']} traced Asks), p50 ms:"
                  f" before the engine {share['before_engine']['p50_ms']} ({stages}),"
                  f" after it {share['after_engine']['p50_ms']}")  # fmt: skip
    if report["cancellation"]:
        print(f"\ncancel after 5 chunks of a 400-token stream, {args.cancel_trials} trials per target")
        print(f"{'target':>16} {'median gen':>10} {'max gen':>8} {'over direct':>11} {'dropped':>8}")
        for name, c in report["cancellation"].items():
            print(f"{name:>16} {c['median_generated']!s:>10} {c['max_generated']!s:>8} {c['median_over_direct']!s:>11}"
                  f" {c['dropped_burst']:>8}")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
