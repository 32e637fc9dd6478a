"""roadwork-router: serve the gRPC API, or call it (ask, detect, batch)."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import logging
import os
import shutil
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

from router.api.workers import WorkerProcesses, share_cores, share_metrics
from router.config import load_config
from router.errors import ConfigError

SAMPLE_IMAGE = Path(__file__).parent.parent / "assets" / "sample_roadwork.jpg"
DEFAULT_ADDR = "127.0.0.1:50051"


def _bad_config(exc: ConfigError) -> NoReturn:
    """A configuration error, found on loading or at start-up: its message (naming the key), exit 2."""
    print(f"roadwork-router: {exc}", file=sys.stderr, flush=True)
    sys.exit(2)


def _config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        _bad_config(exc)
    overrides = {}
    if getattr(args, "port", None) is not None:
        overrides["port"] = args.port
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if overrides:
        cfg = cfg.model_copy(update={"server": cfg.server.model_copy(update=overrides)})
    return cfg


def _try_hint(addr: str) -> str:
    """What to run next, with the console script's path as this user invoked it."""
    exe = os.path.relpath(sys.argv[0]) if os.path.exists(sys.argv[0]) else "roadwork-router"
    return (
        f"\nStill serving on {addr}. Try:\n  {exe} ask {os.path.relpath(SAMPLE_IMAGE)} "
        f'"How many cones are there?" --addr {addr}\nCtrl-C stops the router.'
    )


async def _serve(args: argparse.Namespace, demo: bool) -> None:
    config = _config(args)
    if config.observe.log_format == "json":
        from router.observe.tracing import log_as_json

        log_as_json()
    share_cores(config.server.workers)  # before torch loads; the worker processes inherit it
    metrics_dir = share_metrics(config.server)  # before the metrics are built; inherited too
    if metrics_dir:
        atexit.register(shutil.rmtree, metrics_dir, True)
    from router.api.app import RouterApp

    try:
        app = RouterApp(config)  # a detector's weights missing or unreadable
    except ConfigError as exc:
        _bad_config(exc)
    try:
        port = await app.start()
    except ConfigError as exc:  # a port another process holds (server.port, server.metrics_port), bad TLS files
        await app.stop(0)
        _bad_config(exc)
    host = app.config.server.host
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if not app.ready.is_set():
        print(f"roadwork-router: listening on {host}:{port}; warming up detectors and engines...", flush=True)
    try:
        await app.wait_ready()
    except ConfigError as exc:  # found at warm-up: a launch port held by another process, a blind model,
        await app.stop(0)  # weights that do not load
        _bad_config(exc)
    metrics = (
        f", metrics on http://{app.config.server.metrics_host}:{app.metrics_port}/metrics" if app.metrics_port else ""
    )
    print(f"roadwork-router: SERVING on {host}:{port}{metrics}", flush=True)
    if demo:
        from router.cli.demo import run_demo

        await asyncio.to_thread(run_demo, f"{host}:{port}")
        if args.exit:
            stop.set()
        else:
            print(_try_hint(f"{host}:{port}"), flush=True)
    workers = WorkerProcesses(app.config, port, args.config)
    supervisor = None
    if app.config.server.worker_index == 0:
        workers.start()
        supervisor = asyncio.create_task(workers.supervise(), name="worker-supervisor")
    await stop.wait()
    print(f"roadwork-router: shutting down (grace {app.config.server.grace_s:.0f} s)", flush=True)
    await app.stop(others=asyncio.ensure_future(workers.stop(app.config.server.grace_s)))
    if supervisor is not None:
        supervisor.cancel()


def cmd_serve(args: argparse.Namespace) -> None:
    asyncio.run(_serve(args, demo=False))


def cmd_demo(args: argparse.Namespace) -> None:
    asyncio.run(_serve(args, demo=True))


def cmd_check_config(args: argparse.Namespace) -> None:
    cfg = _config(args)
    print(f"configuration OK: {len(cfg.pools)} pools, {len(cfg.detectors)} detectors")


def _rpc_error(exc: BaseException) -> NoReturn:
    import grpc

    from router.cli.client import error_reason

    if isinstance(exc, grpc.RpcError):
        reason = error_reason(exc)
        sys.exit(f"roadwork-router: {exc.code().name}: {exc.details()}" + (f" [{reason}]" if reason else ""))
    raise exc


def cmd_ask(args: argparse.Namespace) -> None:
    from router._proto.roadwork.v1 import router_pb2 as pb
    from router.cli.client import RouterClient
    from router.cli.demo import print_ask_stream

    client = RouterClient(args.addr)
    image = Path(args.image).read_bytes() if args.image != "-" else b""
    req = pb.AskRequest(
        image=image,
        question=args.question,
        session_id=args.session or "",
        open_session=args.open_session,
        strict=args.strict,
        generation=pb.GenerationOptions(max_tokens=args.max_tokens),
        format=pb.ANSWER_FORMAT_VERDICT if args.verdict else pb.ANSWER_FORMAT_TEXT,
    )
    try:
        print_ask_stream(client.ask(req, timeout=args.timeout), as_json=args.json)
    except Exception as exc:
        _rpc_error(exc)


def cmd_detect(args: argparse.Namespace) -> None:
    from google.protobuf.json_format import MessageToDict

    from router.cli.client import RouterClient

    try:
        resp = RouterClient(args.addr).detect(Path(args.image).read_bytes(), timeout=args.timeout)
    except Exception as exc:
        _rpc_error(exc)
    print(json.dumps(MessageToDict(resp.detection, always_print_fields_with_no_presence=True), indent=2))


def cmd_batch_submit(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from router._proto.roadwork.v1 import router_pb2 as pb
    from router.cli.client import IMAGE_SUFFIXES, RouterClient

    directory = Path(args.dir)
    if not directory.is_dir():
        sys.exit(f"roadwork-router: {directory} is not a directory")
    total = sum(1 for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    client = RouterClient(args.addr)
    options = pb.BatchOptions(
        default_question=args.question,
        display_name=args.name or directory.name,
        detect_only=args.detect_only,
        format=pb.ANSWER_FORMAT_VERDICT if args.verdict else pb.ANSWER_FORMAT_TEXT,
    )
    if args.item_timeout:
        options.item_timeout.FromTimedelta(timedelta(seconds=args.item_timeout))
    with tqdm(total=total, unit="img", desc="uploading") as bar:
        try:
            resp = client.submit_dir(directory, options, on_item=lambda _p: bar.update(1))
        except Exception as exc:
            _rpc_error(exc)
    print(f"job {resp.job.job_id}: {resp.job.total} items accepted")
    if args.watch:
        _watch(client, resp.job.job_id)


def _watch(client, job_id: str) -> None:  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    from router._proto.roadwork.v1 import router_pb2 as pb

    bar = None
    try:
        for msg in client.stub.WatchBatch(pb.WatchBatchRequest(job_id=job_id)):
            job = msg.job
            if bar is None:
                bar = tqdm(total=job.total, unit="item", desc=job_id)
            bar.n = job.succeeded + job.failed + job.canceled
            bar.set_postfix(ok=job.succeeded, failed=job.failed, state=pb.BatchState.Name(job.state)[12:].lower())
            bar.refresh()
    except Exception as exc:
        _rpc_error(exc)
    finally:
        if bar is not None:
            bar.close()


def cmd_batch_watch(args: argparse.Namespace) -> None:
    from router.cli.client import RouterClient

    _watch(RouterClient(args.addr), args.job)


def cmd_batch_results(args: argparse.Namespace) -> None:
    from google.protobuf.json_format import MessageToDict

    from router._proto.roadwork.v1 import router_pb2 as pb
    from router.cli.client import RouterClient

    stub = RouterClient(args.addr).stub
    req = pb.ListBatchResultsRequest(job_id=args.job, offset=args.offset, limit=args.limit, follow=args.follow)
    try:
        for msg in stub.ListBatchResults(req):
            print(json.dumps(MessageToDict(msg.result, always_print_fields_with_no_presence=True)), flush=True)
    except Exception as exc:
        _rpc_error(exc)


def cmd_batch_cancel(args: argparse.Namespace) -> None:
    from router._proto.roadwork.v1 import router_pb2 as pb
    from router.cli.client import RouterClient

    try:
        job = RouterClient(args.addr).stub.CancelBatch(pb.CancelBatchRequest(job_id=args.job)).job
    except Exception as exc:
        _rpc_error(exc)
    print(f"job {job.job_id}: canceled ({job.succeeded} succeeded, {job.failed} failed, {job.canceled} canceled)")


def cmd_status(args: argparse.Namespace) -> None:
    from router._proto.roadwork.v1 import router_pb2 as pb
    from router.cli.client import RouterClient
    from router.cli.demo import enum_name

    try:
        status = RouterClient(args.addr).stub.GetStatus(pb.GetStatusRequest(), timeout=args.timeout)
    except Exception as exc:
        _rpc_error(exc)

    def state(value: int) -> str:
        return enum_name(pb.BreakerState, value).upper()

    print(f"serving: {'yes' if status.serving else 'no (warming up)'}")
    replicas = {r.name: r for r in status.replicas}
    for rule in status.routing:
        print(f"route {enum_name(pb.RequestKind, rule.kind)}: {' -> '.join(rule.pools)}")
    for p in status.pools:
        wait = (
            f", probe in {p.breaker_retry_in.ToNanoseconds() / 1e9:.1f} s" if p.breaker == pb.BREAKER_STATE_OPEN else ""
        )
        engine, policy = enum_name(pb.Engine, p.engine), enum_name(pb.RoutingPolicy, p.policy)
        print(f"pool {p.name} ({engine}, {policy}): breaker {state(p.breaker)}{wait}")
        for r in (replicas[name] for name in p.replicas):
            health = "healthy" if r.healthy else "UNHEALTHY"
            queued = f"{r.queued_interactive}+{r.queued_batch}"
            print(f"  {r.name}: {health}, breaker {state(r.breaker)}, in flight {r.in_flight}, queued {queued}, "
                  f"load {r.load}, bulk {r.bulk_in_flight} of {r.bulk_window}")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="roadwork-router", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def server_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--config",
            help="TOML config file (default: the bundled quick-start config); "
            "ROADWORK__SECTION__KEY env vars override it",
        )
        sp.add_argument("--host", help="override server.host")
        sp.add_argument("--port", type=int, help="override server.port")

    def client_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--addr", default=DEFAULT_ADDR, help=f"router address (default {DEFAULT_ADDR})")
        sp.add_argument("--timeout", type=float, default=120.0, help="deadline in seconds (default 120)")

    sp = sub.add_parser("serve", help="serve the gRPC API")
    server_args(sp)
    sp.set_defaults(fn=cmd_serve)
    sp = sub.add_parser("demo", help="serve, send a demo Ask with the bundled sample image, keep serving")
    server_args(sp)
    sp.add_argument("--exit", action="store_true", help="stop after the demo request")
    sp.set_defaults(fn=cmd_demo)
    sp = sub.add_parser("check-config", help="validate a config file (with env overrides) and exit")
    server_args(sp)
    sp.set_defaults(fn=cmd_check_config)

    sp = sub.add_parser("ask", help="ask a question about an image and print the streamed answer")
    sp.add_argument("image", help="image file (JPEG, PNG, WebP); '-' for none on a follow-up")
    sp.add_argument("question")
    sp.add_argument("--session", help="continue this session")
    sp.add_argument("--open-session", action="store_true", help="open a session and print its id")
    sp.add_argument("--max-tokens", type=int, default=0)
    sp.add_argument("--strict", action="store_true", help="fail instead of a detections-only answer")
    sp.add_argument("--verdict", action="store_true", help="ask for a structured JSON verdict (ANSWER_FORMAT_VERDICT)")
    sp.add_argument("--json", action="store_true", help="print each event as JSON")
    client_args(sp)
    sp.set_defaults(fn=cmd_ask)

    sp = sub.add_parser("detect", help="run the detection ensemble on an image, print JSON")
    sp.add_argument("image")
    client_args(sp)
    sp.set_defaults(fn=cmd_detect)

    sp = sub.add_parser("status", help="engine pools, replicas, health and circuit breakers (GetStatus)")
    client_args(sp)
    sp.set_defaults(fn=cmd_status)

    bp = sub.add_parser("batch", help="bulk jobs").add_subparsers(dest="batch_command", required=True)
    sp = bp.add_parser("submit", help="submit every image under DIR as one job (progress bar)")
    sp.add_argument("dir")
    sp.add_argument("--question", default="Is there roadwork in this image?", help="question for every image")
    sp.add_argument("--name", help="display name (default: the directory name)")
    sp.add_argument("--detect-only", action="store_true", help="detections only, no engine")
    sp.add_argument("--verdict", action="store_true", help="a structured JSON verdict per image")
    sp.add_argument("--item-timeout", type=float, default=0, metavar="S",
                    help="longest one item may take, seconds (default: the server's batch.item_timeout_s)")  # fmt: skip
    sp.add_argument("--watch", action="store_true", help="then follow progress until the job ends")
    client_args(sp)
    sp.set_defaults(fn=cmd_batch_submit)
    sp = bp.add_parser("watch", help="follow a job's progress until it ends")
    sp.add_argument("job")
    client_args(sp)
    sp.set_defaults(fn=cmd_batch_watch)
    sp = bp.add_parser("results", help="print a job's results as JSON lines")
    sp.add_argument("job")
    sp.add_argument("--offset", type=int, default=0)
    sp.add_argument("--limit", type=int, default=0)
    sp.add_argument("--follow", action="store_true", help="wait for unfinished items")
    client_args(sp)
    sp.set_defaults(fn=cmd_batch_results)
    sp = bp.add_parser("cancel", help="cancel a job's unfinished items")
    sp.add_argument("job")
    client_args(sp)
    sp.set_defaults(fn=cmd_batch_cancel)
    return p


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO: a formatted, written log line per engine call and health probe.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
