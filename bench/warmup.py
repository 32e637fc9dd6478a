"""First request after start-up vs steady state: does warm-up (before SERVING) leave anything cold?

python -m bench.warmup [--restarts 3] [--steady 20] [--json bench/results/warmup.json]

Starts one vLLM (CPU, tiny model), then, `--restarts` times, a fresh roadwork-router process
pointed at it; as soon as gRPC health says SERVING it sends an `Ask` with an image the router has
never seen (detection runs), then `--steady` more, each with another new image. Reports the first
request's latency over the steady-state median (issue 4's goal: <= 1.2x), per restart and overall.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from bench._servers import default_vllm_python, scene_jpegs, start_router, start_vllm, vllm_routes
from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc


async def _ask(stub: pb_grpc.RouterServiceStub, image: bytes) -> float:
    t0 = time.perf_counter()
    opts = pb.GenerationOptions(max_tokens=16, temperature=0.0)
    async for _event in stub.Ask(
        pb.AskRequest(image=image, question="Is there roadwork?", generation=opts), timeout=120
    ):
        pass
    return (time.perf_counter() - t0) * 1e3


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir)
    vllm = await start_vllm(args.vllm_python, workdir)
    runs = []
    try:
        env = vllm_routes(vllm.url)
        for r in range(args.restarts):
            images = scene_jpegs(args.steady + 1, seed=100 + r)
            router = await start_router(env | {"ROADWORK__STORAGE__PATH": str(workdir / f"warm{r}.sqlite3")})
            try:
                async with grpc.aio.insecure_channel(router.url) as channel:
                    stub = pb_grpc.RouterServiceStub(channel)  # type: ignore[no-untyped-call]
                    first = await _ask(stub, images[0])
                    steady = [await _ask(stub, img) for img in images[1:]]
            finally:
                await router.stop()
            runs.append({"first_ms": first, "steady_p50_ms": statistics.median(steady),
                         "ratio": first / statistics.median(steady)})  # fmt: skip
    finally:
        await vllm.stop()
    return {"runs": runs, "ratio_median": statistics.median(r["ratio"] for r in runs)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vllm-python", default=default_vllm_python())
    p.add_argument("--restarts", type=int, default=3)
    p.add_argument("--steady", type=int, default=20)
    p.add_argument("--workdir", default=tempfile.mkdtemp(prefix="roadwork-warmup-"))
    p.add_argument("--json", type=Path, default=Path("bench/results/warmup.json"))
    args = p.parse_args()
    report = asyncio.run(_main(args))
    print("first Ask after SERVING vs steady state (new image each time: detection runs), 16 tokens")
    print(f"{'restart':>7} {'first ms':>9} {'steady p50 ms':>14} {'ratio':>6}")
    for i, r in enumerate(report["runs"]):
        print(f"{i:>7} {r['first_ms']:>9.1f} {r['steady_p50_ms']:>14.1f} {r['ratio']:>6.2f}")
    print(f"median ratio {report['ratio_median']:.2f} (goal <= 1.2)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
