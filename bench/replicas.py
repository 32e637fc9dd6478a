"""The store on the bulk hot path: SQLite on one host vs PostgreSQL shared by 1, 2 and 3 replicas.

python -m bench.replicas [--items 600] [--workers 4] [--json bench/results/replicas.json]
python -m bench.replicas --detect-only [--router-items 2000] [--rounds 3] [--device cuda]

Starts a throwaway PostgreSQL (Debian's server, tests/pg.py; make pg-env installs it). Each
"replica" is a process with `--workers` bulk workers that claim and finish items of one job through
JobStore (router/state/jobs.py) with an instant outcome, so the figures are the store's alone (where
a detect-only job on GPU detectors puts it). Reports, in one run:
- bulk throughput (items/s) with 1, 2 and 3 replicas on PostgreSQL, one process on SQLite, and
  3 processes sharing one SQLite file (server.workers on one host), with ratios to SQLite;
- claim-and-finish latency per item (one worker, sequential), median and p90, per backend;
- a session follow-up's store work (turn lock, read, record) on the replica that opened the
  session and on another one, per backend.

--detect-only instead runs real detect-only bulk jobs through router processes (`roadwork-router
serve`, real detectors, detection cache off, distinct JPEGs): one router on SQLite, then 1, 2 and 3
routers, each with its own state directory and port, sharing one PostgreSQL database; each job is
submitted to the first router and every router claims its items. Items/s from the job's acceptance
to its completion, the median of `--rounds` jobs, with ratios to SQLite. On a GPU host the store is
on the hot path there; on one CPU machine the routers and the database share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench._servers import Process, free_port, scene_jpegs, start_router
from bench.detect_speed import _bulk, _env, distinct
from router.flow.pipeline import ItemOutcome
from router.state.jobs import JobStore
from router.state.sessions import SessionStore
from router.state.store import Store, open_store
from router.types import BatchItemInput, BatchOptions
from tests.pg import PostgresServer  # the same throwaway server the store tests use

DONE = ItemOutcome(error_code="X", error_message="bench")


async def _opened(url: str) -> Store:
    store = open_store(url, path=url)
    await store.open()
    return store


async def _items(n: int) -> AsyncIterator[BatchItemInput]:
    for i in range(n):
        yield BatchItemInput(image=bytes([i % 256]) * 1024, item_id=str(i))


async def _submit(url: str, n: int) -> None:
    store = await _opened(url)
    await JobStore(store).submit(BatchOptions(detect_only=True), _items(n), max_items=n, max_image_bytes=4096)
    await store.close()


async def _replica(url: str, workers: int) -> None:
    """One replica's workers: claim and finish until no item is left; prints how many it did."""
    store = await _opened(url)
    jobs = JobStore(store)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # all start together
    done = 0

    async def work() -> None:
        nonlocal done
        while (claimed := await jobs.claim()) is not None:
            await jobs.finish(claimed[0], claimed[1], DONE)
            done += 1

    await asyncio.gather(*(work() for _ in range(workers)))
    print(done, flush=True)
    await store.close()


async def _throughput(url: str, replicas: int, items: int, workers: int) -> dict[str, Any]:
    await _submit(url, items)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.replicas", "--replica", url, "--workers", str(workers),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(replicas)
    ]  # fmt: skip
    for p in procs:
        assert p.stdout is not None and await p.stdout.readline() == b"ready\n"
    t0 = time.perf_counter()
    for p in procs:  # all start together
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        await p.stdin.drain()
    counts = [int((await p.communicate())[0]) for p in procs]
    wall = time.perf_counter() - t0
    assert sum(counts) == items, counts  # every item exactly once
    return {"replicas": replicas, "items": items, "seconds": wall, "items_per_s": items / wall, "split": counts}


async def _latency(url: str, items: int) -> dict[str, float]:
    await _submit(url, items)
    store = await _opened(url)
    jobs = JobStore(store)
    ms = []
    while True:
        t0 = time.perf_counter()
        claimed = await jobs.claim()
        if claimed is None:
            break
        await jobs.finish(claimed[0], claimed[1], DONE)
        ms.append((time.perf_counter() - t0) * 1e3)
    await store.close()
    return {"median_ms": statistics.median(ms), "p90_ms": statistics.quantiles(ms, n=10)[-1], "n": len(ms)}


async def _follow_ups(url: str, turns: int) -> dict[str, float]:
    """A session opened on replica a; follow-ups' store work on a, then on b (its own store and pool)."""
    a_store, b_store = await _opened(url), await _opened(url)
    a = SessionStore(a_store, default_ttl_s=3600, max_ttl_s=3600)
    b = SessionStore(b_store, default_ttl_s=3600, max_ttl_s=3600)
    out = {}
    for name, replica in (("same_replica", a), ("other_replica", b)):
        session = await a.create()
        ms = []
        for i in range(turns):
            t0 = time.perf_counter()
            async with replica.turn(session.id):
                current = await replica.get(session.id)
                await replica.record_turn(current, f"q{i}", "a", image=None, detection=None)
            ms.append((time.perf_counter() - t0) * 1e3)
        out[f"{name}_median_ms"] = statistics.median(ms)
    await a_store.close()
    await b_store.close()
    return out


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    server = PostgresServer(free_port())
    await asyncio.to_thread(server.start)
    tmp = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    n = 0

    def sqlite() -> str:
        nonlocal n
        n += 1
        return str(tmp / f"s{n}.sqlite3")

    try:
        rows = [("sqlite, 1 process", await _throughput(sqlite(), 1, args.items, args.workers))]
        rows.append(("sqlite, 3 processes (one host)", await _throughput(sqlite(), 3, args.items, args.workers)))
        for count in (1, 2, 3):
            url = await asyncio.to_thread(server.database)
            rows.append((f"postgresql, {count} replica(s)", await _throughput(url, count, args.items, args.workers)))
        latency = {
            "sqlite": await _latency(sqlite(), args.latency_items),
            "postgresql": await _latency(await asyncio.to_thread(server.database), args.latency_items),
        }
        follow = {
            "sqlite": await _follow_ups(sqlite(), args.turns),
            "postgresql": await _follow_ups(await asyncio.to_thread(server.database), args.turns),
        }
    finally:
        await asyncio.to_thread(server.remove)
    base = rows[0][1]["items_per_s"]
    print(f"\nbulk throughput, store only ({args.items} items, {args.workers} workers per replica)")
    print(f"{'setup':34} {'items/s':>9} {'x sqlite':>9}  split")
    for name, r in rows:
        print(f"{name:34} {r['items_per_s']:9.0f} {r['items_per_s'] / base:9.2f}  {r['split']}")
    print("\nclaim-and-finish latency per item (one worker)")
    for name, lat in latency.items():
        print(f"{name:12} median {lat['median_ms']:6.2f} ms   p90 {lat['p90_ms']:6.2f} ms")
    print("\nsession follow-up, store work (turn lock + read + record)")
    for name, f in follow.items():
        print(f"{name:12} same replica {f['same_replica_median_ms']:6.2f} ms   other replica"
              f" {f['other_replica_median_ms']:6.2f} ms")  # fmt: skip
    return {
        "throughput": {name: r for name, r in rows},
        "claim_finish_latency": latency,
        "follow_up": follow,
        "ratios": {name: r["items_per_s"] / base for name, r in rows},
    }


async def _routers(count: int, env: dict[str, str], workdir: Path) -> list[Process]:
    """`count` routers started together, each with its own state directory (its log beside it)."""
    dirs = [workdir / f"r{i}" for i in range(count)]
    for d in dirs:
        d.mkdir(parents=True)
    return list(await asyncio.gather(*(start_router(env | {"ROADWORK__STORAGE__PATH": str(d / "router.sqlite3")})
                                       for d in dirs)))  # fmt: skip


async def _detect_only_setup(count: int, env: dict[str, str], jobs: list[list[bytes]], workdir: Path) -> dict[str, Any]:
    """Detect-only jobs, one after another, through `count` routers; items/s per job and their median."""
    routers = await _routers(count, env, workdir)
    try:
        runs = [await _bulk(routers[0].url, images) for images in jobs]
    finally:
        await asyncio.gather(*(r.stop() for r in routers))
    assert all(r["succeeded"] == r["items"] for r in runs), runs
    rates = [r["items_per_s"] for r in runs]
    return {"routers": count, "items_per_s": statistics.median(rates), "runs": rates, "upload_s": runs[0]["upload_s"]}


async def _detect_only(args: argparse.Namespace) -> dict[str, Any]:
    base = scene_jpegs(args.scenes)
    jobs = [distinct(base, args.router_items * args.rounds)[r :: args.rounds] for r in range(args.rounds)]
    env = _env(args.device, {"ROADWORK__BATCH__WORKERS": str(args.workers)})
    server = PostgresServer(free_port())
    await asyncio.to_thread(server.start)
    tmp = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    try:
        rows = [("sqlite, 1 router", await _detect_only_setup(1, env, jobs, tmp / "sqlite"))]
        for count in (1, 2, 3):
            url = await asyncio.to_thread(server.database)
            setup = await _detect_only_setup(count, env | {"ROADWORK__STORAGE__URL": url}, jobs, tmp / f"pg{count}")
            rows.append((f"postgresql, {count} router(s)", setup))
    finally:
        await asyncio.to_thread(server.remove)
    base_rate = rows[0][1]["items_per_s"]
    load = os.getloadavg()
    print(f"\ndetect-only bulk jobs through routers ({args.router_items} items, median of {args.rounds};"
          f" {args.workers} workers per router; {os.cpu_count()} cores, load {load[0]:.1f} {load[1]:.1f})")  # fmt: skip
    print(f"{'setup':30} {'items/s':>9} {'x sqlite':>9}  runs")
    for name, r in rows:
        runs = " ".join(f"{v:.1f}" for v in r["runs"])
        print(f"{name:30} {r['items_per_s']:9.1f} {r['items_per_s'] / base_rate:9.2f}  {runs}")
    return {
        "detect_only": {name: r for name, r in rows},
        "ratios": {name: r["items_per_s"] / base_rate for name, r in rows},
        "cores": os.cpu_count(),
        "load_average": load,
        "args": {k: str(v) for k, v in vars(args).items()},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--items", type=int, default=600)
    p.add_argument("--workers", type=int, default=4, help="bulk workers per replica (batch.workers)")
    p.add_argument("--latency-items", type=int, default=300)
    p.add_argument("--turns", type=int, default=100)
    p.add_argument("--json", help="default: bench/results/replicas.json (--detect-only: replicas-detect-only.json)")
    p.add_argument("--detect-only", action="store_true", help="real detect-only jobs through router processes")
    p.add_argument("--router-items", type=int, default=2000, help="--detect-only: items per job")
    p.add_argument("--rounds", type=int, default=3, help="--detect-only: jobs per setup (the median is reported)")
    p.add_argument("--scenes", type=int, default=64, help="--detect-only: distinct scenes drawn (copies fill the rest)")
    p.add_argument("--device", help="--detect-only: every detector on this device (cuda, cpu); default: the config's")
    p.add_argument("--replica", help=argparse.SUPPRESS)  # internal: run one replica's workers on this store
    args = p.parse_args()
    if args.replica:
        asyncio.run(_replica(args.replica, args.workers))
        return
    result = asyncio.run(_detect_only(args) if args.detect_only else _run(args))
    out = Path(args.json or f"bench/results/replicas{'-detect-only' if args.detect_only else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
