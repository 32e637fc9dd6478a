"""Images on a real vision-language engine: the pixel budget, and image affinity against least-loaded.

python -m bench.vision budget   [--rounds 6] [--width 3840 --height 2160] [--vllm-url URL --model M]
python -m bench.vision affinity [--images 10 --asks 4]
    [--json bench/results/vision-budget.json | vision-affinity.json]

budget: a 4K street scene (a new one each round, so no prefix cache helps) sent through two router
processes side by side, one whose pool fits images to the default budget (`max_pixels` 1,003,520:
1,280 tokens) and one whose budget is the model processor's own (12,845,056: Qwen2-VL's default, up
to 16,384 tokens). Reports prompt tokens, image tokens, bytes sent and time to first token.

affinity: two vLLM replicas and, side by side, a router whose pool routes by `image_affinity` and one
by `least_loaded`. Each round one new scene is asked about --asks times, as several clients asking
about one frame would; reports the share of the repeat asks' prompt tokens served from the prefix
cache, their TTFT, and how many replicas each image touched.

Without --vllm-url the engines are vLLM's CPU build on a tiny random Qwen2-VL built here (ratios
only: absolute times count from the GPU host).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from bench._servers import Process, default_vllm_python, start_router, start_vllm
from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc

QWEN2VL_MAX_PIXELS = 12845056  # Qwen2-VL's own processor default (16,384 image tokens)
ROUTER_MAX_PIXELS = 1280 * 28 * 28  # pools.<name>.max_pixels default


def _scene(seed: int, size: tuple[int, int]) -> bytes:
    from training.synth import render_scene

    out = io.BytesIO()
    render_scene(np.random.default_rng(seed), size)[0].save(out, "JPEG", quality=90)
    return out.getvalue()


async def _ask(stub: pb_grpc.RouterServiceStub, image: bytes) -> dict[str, Any]:
    """One single-shot Ask for a one-token answer, timed at the client: the whole call is the detection,
    the image stage, the prefill and one token, so it is the time to first token (a random-weight model's
    first token may decode to no text, which would leave a streamed TTFT unmeasured)."""
    t0 = time.perf_counter()
    done = pb.AskDoneEvent()
    request = pb.AskRequest(image=image, question="Is there roadwork here?", generation={"max_tokens": 1})
    async for event in stub.Ask(request, timeout=600):
        if event.HasField("done"):
            done = event.done
    if done.degraded:
        raise RuntimeError(f"degraded answer: {list(done.notices)}")
    return {
        "ttft_ms": (time.perf_counter() - t0) * 1e3,
        "detection_ms": done.detection_time.ToNanoseconds() / 1e6,
        "prompt": done.usage.prompt_tokens,
        "cached": done.usage.cached_tokens,
        "image_tokens": done.image.image_tokens,
        "bytes": done.image.bytes,
        "sent": f"{done.image.width}x{done.image.height}",
        "replica": done.route.replica,
    }


def _pool_env(urls: list[str], workdir: Path, name: str, **pool: str) -> dict[str, str]:
    env = {
        "ROADWORK__POOLS__VLLM__ENGINE": "vllm",
        "ROADWORK__POOLS__VLLM__REPLICAS": json.dumps(urls),
        "ROADWORK__POOLS__VLLM__VISION": "true",
        "ROADWORK__ROUTING__SINGLE_SHOT": '["vllm"]',
        "ROADWORK__STORAGE__PATH": str(workdir / f"{name}.sqlite3"),
    }
    return env | {f"ROADWORK__POOLS__VLLM__{k.upper()}": v for k, v in pool.items()}


async def _engines(args: argparse.Namespace, workdir: Path, n: int, max_pixels: int) -> tuple[list[str], list[Process]]:
    """The vLLM servers to measure: --vllm-url, else n started here on a tiny Qwen2-VL."""
    if args.vllm_url:
        return list(args.vllm_url), []
    from engines.tiny_vlm import TINY, build_vlm

    shape = replace(TINY, max_pixels=max_pixels, context=32768)
    model = await asyncio.to_thread(build_vlm, workdir / "vlm", shape)
    extra = ("--max-model-len", "32768")
    started = await asyncio.gather(*(start_vllm(args.vllm_python, workdir / f"v{i}", model, extra) for i in range(n)))
    return [p.url for p in started], list(started)


async def _side_by_side(
    envs: dict[str, dict[str, str]], rounds: int, one_round: Any
) -> tuple[dict[str, list[dict[str, Any]]], list[Process]]:
    """Start one router per env, then run `one_round(stub, round)` for each, alternating who goes first."""
    routers = {name: await start_router(env) for name, env in envs.items()}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in routers}
    channels = {n: grpc.aio.insecure_channel(r.url) for n, r in routers.items()}
    stubs = {n: pb_grpc.RouterServiceStub(c) for n, c in channels.items()}  # type: ignore[no-untyped-call]
    try:
        for i in range(rounds):
            for name in list(routers) if i % 2 == 0 else list(routers)[::-1]:
                results[name] += await one_round(stubs[name], i, name)
    finally:
        for c in channels.values():
            await c.close()
    return results, list(routers.values())


def _med(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


async def _budget(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    procs: list[Process] = []
    try:
        urls, procs = await _engines(args, workdir, 1, QWEN2VL_MAX_PIXELS)
        model = {"model": args.model} if args.model else {}
        envs = {
            "budget": _pool_env(urls, workdir, "budget", max_pixels=str(ROUTER_MAX_PIXELS), **model),
            "no_budget": _pool_env(urls, workdir, "no-budget", max_pixels=str(QWEN2VL_MAX_PIXELS), **model),
        }
        size = (args.width, args.height)

        async def one(stub: pb_grpc.RouterServiceStub, i: int, name: str) -> list[dict[str, Any]]:
            seed = 1000 + 2 * i + (name == "no_budget")
            return [await _ask(stub, await asyncio.to_thread(_scene, seed, size))]

        results, routers = await _side_by_side(envs, args.rounds, one)
        procs += routers
    finally:
        for p in reversed(procs):
            await p.stop()
    report: dict[str, Any] = {"frame": f"{args.width}x{args.height}", "rounds": args.rounds, "calls": results}
    for name, rows in results.items():
        report[name] = {k: _med(rows, k) for k in ("prompt", "image_tokens", "bytes", "ttft_ms", "detection_ms")}
        report[name]["sent"] = rows[0]["sent"]
    b, n = report["budget"], report["no_budget"]
    report["ratio_budget_over_none"] = {k: b[k] / n[k] for k in ("prompt", "bytes", "ttft_ms")}
    return report


async def _affinity(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    procs: list[Process] = []
    try:
        urls, procs = await _engines(args, workdir, 2, ROUTER_MAX_PIXELS)
        model = {"model": args.model} if args.model else {}
        envs = {
            p: _pool_env(urls, workdir, p, policy=p, metrics_interval_s="0", **model)
            for p in ("image_affinity", "least_loaded")
        }

        async def one(stub: pb_grpc.RouterServiceStub, i: int, name: str) -> list[dict[str, Any]]:
            image = await asyncio.to_thread(_scene, 5000 + 2 * i + (name == "least_loaded"), (1280, 720))
            rows = [await _ask(stub, image) for _ in range(args.asks)]
            for k, row in enumerate(rows):
                row["repeat"] = k > 0
                row["replicas"] = len({r["replica"] for r in rows})
            return rows

        results, routers = await _side_by_side(envs, args.images, one)
        procs += routers
    finally:
        for p in reversed(procs):
            await p.stop()
    report: dict[str, Any] = {"images": args.images, "asks_per_image": args.asks, "replicas": 2}
    for name, rows in results.items():
        repeats = [r for r in rows if r["repeat"]]
        report[name] = {
            "repeat_cached_share": sum(r["cached"] for r in repeats) / sum(r["prompt"] for r in repeats),
            "repeat_ttft_p50_ms": _med(repeats, "ttft_ms"),
            "first_ttft_p50_ms": _med([r for r in rows if not r["repeat"]], "ttft_ms"),
            "replicas_per_image": statistics.mean(r["replicas"] for r in rows),
        }
    a, ll = report["image_affinity"], report["least_loaded"]
    report["repeat_ttft_affinity_over_least_loaded"] = a["repeat_ttft_p50_ms"] / ll["repeat_ttft_p50_ms"]
    return report


def _print_budget(r: dict[str, Any]) -> None:
    print(f"a {r['frame']} street scene, {r['rounds']} rounds per side (medians)")
    print(f"{'':>10} {'sent':>10} {'image tok':>10} {'prompt tok':>11} {'bytes sent':>11} {'TTFT':>9}")
    for name in ("budget", "no_budget"):
        s = r[name]
        print(f"{name:>10} {s['sent']:>10} {s['image_tokens']:>10.0f} {s['prompt']:>11.0f} {s['bytes']:>11.0f}"
              f" {s['ttft_ms']:>7.1f}ms")  # fmt: skip
    q = r["ratio_budget_over_none"]
    print(f"budget / none: prompt tokens {q['prompt']:.3f}, bytes {q['bytes']:.3f}, TTFT {q['ttft_ms']:.3f}")


def _print_affinity(r: dict[str, Any]) -> None:
    print(f"{r['images']} images x {r['asks_per_image']} asks, two replicas (medians)")
    print(f"{'policy':>15} {'repeat cached':>14} {'repeat TTFT':>12} {'first TTFT':>11} {'replicas/image':>15}")
    for name in ("image_affinity", "least_loaded"):
        s = r[name]
        print(f"{name:>15} {s['repeat_cached_share']:>14.1%} {s['repeat_ttft_p50_ms']:>10.1f}ms"
              f" {s['first_ttft_p50_ms']:>9.1f}ms {s['replicas_per_image']:>15.2f}")  # fmt: skip
    print(f"repeat TTFT, image_affinity / least_loaded: {r['repeat_ttft_affinity_over_least_loaded']:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("budget", "affinity"))
    p.add_argument("--vllm-url", action="append", help="measure these servers (twice for affinity)")
    p.add_argument("--model", default="", help="served model id (default: ask the server)")
    p.add_argument("--vllm-python", default=default_vllm_python())
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--width", type=int, default=3840)
    p.add_argument("--height", type=int, default=2160)
    p.add_argument("--images", type=int, default=10)
    p.add_argument("--asks", type=int, default=4)
    p.add_argument("--workdir", default=tempfile.mkdtemp(prefix="roadwork-vision-"))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    workdir = Path(args.workdir)
    run = _budget if args.what == "budget" else _affinity
    report = asyncio.run(run(args, workdir))
    out = args.json or Path(f"bench/results/vision-{args.what}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    (_print_budget if args.what == "budget" else _print_affinity)(report)


if __name__ == "__main__":
    main()
