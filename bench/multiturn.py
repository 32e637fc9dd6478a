"""Multi-turn conversations on two replicas: session affinity vs round-robin.

python -m bench.multiturn [--conversations 8] [--context-words 1500] [--json bench/results/multiturn.json]

Starts two vLLM servers (CPU, tiny model) and, for each policy, a roadwork-router process whose
multi-turn pool has both as replicas. Each conversation opens with a long first question (a
unique "site log" of --context-words words, so the prompt's prefill is real work) and three short
follow-ups. Reports, per policy, the follow-ups' time to first token and the share of their prompt
tokens the engine served from its prefix cache (issue 4's goals for affinity: follow-up TTFT
<= 0.5x round-robin's, > 80 % cached). Conversations of the two policies alternate, so drift
hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from bench._servers import Process, default_vllm_python, start_router, start_vllm
from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc

SAMPLE = Path(__file__).resolve().parents[1] / "router" / "assets" / "sample_roadwork.jpg"
FOLLOW_UPS = ("How many lanes are closed?", "Are there workers on the road?", "Is it safe to pass now?")


async def _turn(stub: pb_grpc.RouterServiceStub, **kw: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    ttft = None
    done: Any = None
    async for event in stub.Ask(pb.AskRequest(generation=pb.GenerationOptions(max_tokens=8), **kw), timeout=300):
        if event.HasField("delta") and ttft is None:
            ttft = (time.perf_counter() - t0) * 1e3
        elif event.HasField("done"):
            done = event.done
    u = done.usage
    return {"ttft_ms": ttft, "prompt": u.prompt_tokens, "cached": u.cached_tokens, "replica": done.route.replica,
            "session_id": done.session_id}  # fmt: skip


async def _conversation(stub: pb_grpc.RouterServiceStub, image: bytes, log: str) -> list[dict[str, Any]]:
    first = await _turn(stub, image=image, question=f"Site log: {log}\nIs the work zone active?", open_session=True)
    turns = [first]
    for q in FOLLOW_UPS:
        turns.append(await _turn(stub, question=q, session_id=first["session_id"]))
    return turns


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir)
    procs: list[Process] = []
    try:
        from engines.tiny_model import build_tiny_model

        model = build_tiny_model(workdir / "tiny")
        servers = await asyncio.gather(*(start_vllm(args.vllm_python, workdir / f"v{i}", model) for i in range(2)))
        procs += servers
        routers = {}
        for policy in ("session_affinity", "round_robin"):
            env = {
                "ROADWORK__POOLS__VLLM__ENGINE": "vllm",
                "ROADWORK__POOLS__VLLM__REPLICAS": json.dumps([s.url for s in servers]),
                "ROADWORK__POOLS__VLLM__POLICY": policy,
                "ROADWORK__ROUTING__MULTI_TURN": '["vllm"]',
                "ROADWORK__LIMITS__MAX_QUESTION_CHARS": "40000",  # the long first question
                "ROADWORK__STORAGE__PATH": str(workdir / f"{policy}.sqlite3"),
            }
            routers[policy] = await start_router(env)
            procs.append(routers[policy])
        rng = random.Random(7)
        image = SAMPLE.read_bytes()
        results: dict[str, list[list[dict[str, Any]]]] = {p: [] for p in routers}
        channels = {p: grpc.aio.insecure_channel(r.url) for p, r in routers.items()}
        stubs = {p: pb_grpc.RouterServiceStub(c) for p, c in channels.items()}  # type: ignore[no-untyped-call]
        for c in range(args.conversations):
            for policy in list(routers) if c % 2 == 0 else list(routers)[::-1]:
                log = " ".join(f"w{rng.randrange(5000)}" for _ in range(args.context_words))
                results[policy].append(await _conversation(stubs[policy], image, log))
        for ch in channels.values():
            await ch.close()
    finally:
        for p in reversed(procs):
            await p.stop()
    report: dict[str, Any] = {"conversations": args.conversations, "context_words": args.context_words}
    for policy, convs in results.items():
        first = [c[0] for c in convs]
        follow = [t for c in convs for t in c[1:]]
        report[policy] = {
            "first_ttft_p50_ms": statistics.median(t["ttft_ms"] for t in first),
            "follow_up_ttft_p50_ms": statistics.median(t["ttft_ms"] for t in follow),
            "follow_up_cached_share": sum(t["cached"] for t in follow) / sum(t["prompt"] for t in follow),
            "follow_up_prompt_p50": statistics.median(t["prompt"] for t in follow),
            "replicas_per_conversation": statistics.mean(len({t["replica"] for t in c}) for c in convs),
        }
    a, r = report["session_affinity"], report["round_robin"]
    report["follow_up_ttft_affinity_over_round_robin"] = a["follow_up_ttft_p50_ms"] / r["follow_up_ttft_p50_ms"]
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vllm-python", default=default_vllm_python())
    p.add_argument("--conversations", type=int, default=8)
    p.add_argument("--context-words", type=int, default=1500)
    p.add_argument("--workdir", default=tempfile.mkdtemp(prefix="roadwork-multiturn-"))
    p.add_argument("--json", type=Path, default=Path("bench/results/multiturn.json"))
    args = p.parse_args()
    report = asyncio.run(_main(args))
    print(f"{args.conversations} four-turn conversations per policy, two vLLM replicas (CPU, tiny model),"
          f" first question ~{args.context_words} words")  # fmt: skip
    print(f"{'policy':>17} {'first TTFT':>11} {'follow-up TTFT':>15} {'cached':>7} {'replicas/conv':>14}")
    for policy in ("session_affinity", "round_robin"):
        r = report[policy]
        print(f"{policy:>17} {r['first_ttft_p50_ms']:>9.1f}ms {r['follow_up_ttft_p50_ms']:>13.1f}ms"
              f" {r['follow_up_cached_share']:>7.1%} {r['replicas_per_conversation']:>14.2f}")  # fmt: skip
    print(f"follow-up TTFT, affinity / round-robin: {report['follow_up_ttft_affinity_over_round_robin']:.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
