"""Durability with the router as a real separate process: SIGKILL and SIGTERM during a bulk job.

Each test starts `python -m router.cli.main serve` on a free port and a fresh SQLite store, submits a
bulk job whose items really generate text with the embedded engine, stops the process partway
(SIGKILL: a crash; SIGTERM: a graceful shutdown), starts a new process on the same store and
checks that the job resumes and completes with every item exactly once, and (SIGKILL) that a
session opened before the crash still answers follow-ups about its image. `items.attempts` in the
store shows that only the items in flight at the stop ran twice. The last test (in-process) pins a
CancelBatch bug that killed bulk workers and left later jobs stuck.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc
from tests.conftest import ROOT, RunningRouter, free_port, make_config
from tests.router.state.test_batch import _images, _submit

pytestmark = pytest.mark.slow

N_ITEMS = 40  # the generating job: distinct images, one of them undecodable
BAD_IDX = 17
MAX_TOKENS = 48  # the SIGKILL job: ~10 items/s on a 2-core CPU
SLOW_MAX_TOKENS = 160  # the SIGTERM job: slower, so that it outlasts the grace period
GRACE_S = 2.0
FINISHED = ("succeeded", "failed", "canceled")


class RouterProcess:
    """`python -m router.cli.main serve` as a child process, with its output in a log file."""

    def __init__(self, tmp: Path, port: int, name: str, **env: str) -> None:
        self.port = port
        self.metrics_port = int(env.get("ROADWORK__SERVER__METRICS_PORT", "0"))  # 0: no /metrics
        self.addr = f"127.0.0.1:{port}"
        self.log = tmp / f"{name}.log"
        full_env = {
            **os.environ,
            "ROADWORK__SERVER__PORT": str(port),
            "ROADWORK__SERVER__METRICS_PORT": "0",
            "ROADWORK__STORAGE__PATH": str(tmp / "router.sqlite3"),
            **env,
        }
        self.started = time.monotonic()
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "router.cli.main", "serve"], cwd=ROOT, env=full_env, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.channel = grpc.insecure_channel(self.addr, options=[("grpc.max_receive_message_length", 64 << 20)])
        self.stub = pb_grpc.RouterServiceStub(self.channel)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def wait_serving(self, timeout: float = 120) -> float:
        """Seconds from the process start to health SERVING."""
        health = health_pb2_grpc.HealthStub(self.channel)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"router exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                resp = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.monotonic() - self.started
            except grpc.RpcError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"router not SERVING after {timeout} s:\n{self.tail()}")

    def job(self, job_id: str) -> pb.BatchJob:
        return self.stub.GetBatch(pb.GetBatchRequest(job_id=job_id), timeout=10).job

    def wait_done(self, job_id: str, at_least: int, timeout: float = 120) -> pb.BatchJob:
        """Poll until `at_least` items of the job ended; returns the last view."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job.succeeded + job.failed + job.canceled >= at_least:
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id}: fewer than {at_least} items done after {timeout} s: {job}")

    def signal(self, sig: int, timeout: float = 120) -> tuple[int, float]:
        """Send `sig`; returns the exit code and the seconds the process took to exit."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        return rc, time.monotonic() - t0

    def close(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def routers() -> Iterator[list[RouterProcess]]:
    """Every router process a test starts; any still running at the end is killed."""
    started: list[RouterProcess] = []
    yield started
    for r in started:
        r.close()


Rows = dict[int, tuple[str, "str | None", int]]


def _db_items(db_path: Path, job_id: str) -> Rows:
    """idx -> (status, result JSON, attempts), read straight from the store."""
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        rows = db.execute("SELECT idx, status, result, attempts FROM items WHERE job_id = ?", (job_id,)).fetchall()
    return {idx: (status, result, attempts) for idx, status, result, attempts in rows}


def _generating_job(seed: int, max_tokens: int) -> tuple[list[pb.BatchItem], pb.BatchOptions]:
    images = _images(N_ITEMS, seed=seed)
    images[BAD_IDX] = b"not an image at all"
    items = [pb.BatchItem(image=img, item_id=f"img-{i:02d}.jpg") for i, img in enumerate(images)]
    items[3].question = "Are workers present?"
    options = pb.BatchOptions(
        default_question="Is there roadwork?", display_name="durability",
        generation=pb.GenerationOptions(max_tokens=max_tokens),
    )  # fmt: skip
    return items, options


def _check_results(router: RouterProcess, job_id: str, items: list[pb.BatchItem], max_tokens: int = 0) -> None:
    """Every item exactly once, in order, each with a result; GetBatch counts agree."""
    results = [m.result for m in router.stub.ListBatchResults(pb.ListBatchResultsRequest(job_id=job_id), timeout=30)]
    followed = [
        m.result.index
        for m in router.stub.ListBatchResults(pb.ListBatchResultsRequest(job_id=job_id, follow=True), timeout=30)
    ]
    assert [r.index for r in results] == list(range(len(items))) == followed  # no loss, no duplicates, in order
    assert [r.item_id for r in results] == [it.item_id for it in items]
    for r, item in zip(results, items, strict=True):
        if item.image == b"not an image at all":
            assert r.status == pb.ITEM_STATUS_FAILED and r.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0], r
            assert "could not be decoded" in r.error.message
            continue
        assert r.status == pb.ITEM_STATUS_SUCCEEDED, r
        assert r.detection.image_sha256 == hashlib.sha256(item.image).hexdigest()
        if not max_tokens:  # detect-only
            assert r.answer == "" and r.detection.votes
        else:
            assert r.route.kind == pb.REQUEST_KIND_BATCH and 0 < r.usage.completion_tokens <= max_tokens
    failed = sum(r.status == pb.ITEM_STATUS_FAILED for r in results)
    job = router.job(job_id)
    assert (job.state, job.total, job.pending, job.canceled) == (pb.BATCH_STATE_COMPLETED, len(items), 0, 0)
    assert (job.succeeded, job.failed) == (len(items) - failed, failed)


def _check_attempts(before: Rows, after: Rows) -> None:
    """Items finished before the stop kept their result and ran once; only those in flight ran twice."""
    in_flight = {idx for idx, (status, _, _) in before.items() if status == "running"}
    for idx, (status, result, attempts) in before.items():
        if status in FINISHED:
            assert after[idx][1] == result and after[idx][2] == attempts == 1, idx
    assert {idx: a for idx, (_, _, a) in after.items()} == {idx: 2 if idx in in_flight else 1 for idx in after}
    assert all(status in FINISHED for status, _, _ in after.values())


def _ask(stub: Any, **kw: Any) -> list[pb.AskResponse]:
    return list(stub.Ask(pb.AskRequest(generation=pb.GenerationOptions(max_tokens=4), **kw), timeout=60))


def test_sigkill_mid_job_resumes_every_item_once_and_keeps_the_session(
    tmp_path: Path, routers: list[RouterProcess], sample_jpeg: bytes
) -> None:
    port = free_port()
    db_path = tmp_path / "router.sqlite3"
    first = RouterProcess(tmp_path, port, "first")
    routers.append(first)
    first.wait_serving()

    session = first.stub.CreateSession(pb.CreateSessionRequest(image=sample_jpeg), timeout=60).session
    assert session.image_sha256 == hashlib.sha256(sample_jpeg).hexdigest()
    turn1 = _ask(first.stub, question="How many cones?", session_id=session.session_id)
    assert turn1[-1].done.session_id == session.session_id

    items, options = _generating_job(seed=1, max_tokens=MAX_TOKENS)
    job = _submit(first.stub, items, options)
    detect_items = [pb.BatchItem(image=img, item_id=f"d{i}") for i, img in enumerate(_images(10, seed=2))]
    detect_job = _submit(first.stub, detect_items, pb.BatchOptions(detect_only=True))  # queued behind `job`
    first.wait_done(job.job_id, at_least=N_ITEMS // 4)
    rc, _ = first.signal(signal.SIGKILL)
    assert rc == -signal.SIGKILL

    at_kill = _db_items(db_path, job.job_id)
    done_at_kill = sum(s in FINISHED for s, _, _ in at_kill.values())
    running_at_kill = sum(s == "running" for s, _, _ in at_kill.values())
    assert 0 < done_at_kill < N_ITEMS, at_kill
    detect_at_kill = _db_items(db_path, detect_job.job_id)

    second = RouterProcess(tmp_path, port, "second")
    routers.append(second)
    t_restart = time.monotonic()
    serving_s = second.wait_serving()
    second.wait_done(job.job_id, at_least=N_ITEMS)
    second.wait_done(detect_job.job_id, at_least=len(detect_items))
    complete_s = time.monotonic() - t_restart
    assert "resuming" in second.tail() or running_at_kill == 0

    _check_results(second, job.job_id, items, MAX_TOKENS)
    _check_results(second, detect_job.job_id, detect_items)
    _check_attempts(at_kill, _db_items(db_path, job.job_id))
    _check_attempts(detect_at_kill, _db_items(db_path, detect_job.job_id))

    # The session survived the crash: a follow-up without an image is about the same image.
    turn2 = _ask(second.stub, question="And now?", session_id=session.session_id)
    assert turn2[0].detected.detection.image_sha256 == session.image_sha256
    assert turn2[0].detected.session_id == turn2[-1].done.session_id == session.session_id
    assert turn2[-1].done.route.kind == pb.REQUEST_KIND_MULTI_TURN and turn2[-1].done.usage.completion_tokens > 0
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        (history,) = db.execute("SELECT history FROM sessions WHERE id = ?", (session.session_id,)).fetchone()
    assert [q for q, _ in json.loads(history)] == ["How many cones?", "And now?"]

    print(
        f"\nSIGKILL: {N_ITEMS} items, {done_at_kill} done and {running_at_kill} running at kill;"
        f" restart SERVING in {serving_s:.1f} s, job complete {complete_s:.1f} s after restart"
    )
    rc, _ = second.signal(signal.SIGTERM)
    assert rc == 0, second.tail()


def test_sigterm_mid_job_exits_cleanly_within_grace_and_resumes(tmp_path: Path, routers: list[RouterProcess]) -> None:
    port = free_port()
    db_path = tmp_path / "router.sqlite3"
    first = RouterProcess(tmp_path, port, "first", ROADWORK__SERVER__GRACE_S=str(GRACE_S))
    routers.append(first)
    first.wait_serving()

    items, options = _generating_job(seed=3, max_tokens=SLOW_MAX_TOKENS)
    job = _submit(first.stub, items, options)
    # An RPC in flight at SIGTERM (a results stream following the job): the grace period is for it.
    followed: list[int] = []
    ended: list[grpc.StatusCode] = []

    def follow() -> None:
        try:
            for m in first.stub.ListBatchResults(pb.ListBatchResultsRequest(job_id=job.job_id, follow=True)):
                followed.append(m.result.index)
            ended.append(grpc.StatusCode.OK)
        except grpc.RpcError as exc:
            ended.append(exc.code())

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    at_signal = first.wait_done(job.job_id, at_least=N_ITEMS // 10)
    rc, exit_s = first.signal(signal.SIGTERM)
    assert rc == 0, first.tail()
    # Unloaded, the router exits 0.3-0.8 s after the grace period; CPU-bound teardown (detector threads,
    # interpreter finalisation) stretches with other load on a 2-core machine, so the bound does too.
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    allowed = GRACE_S + 5 * max(1.0, load)
    assert exit_s <= allowed, f"exit took {exit_s:.1f} s (grace {GRACE_S} s, load {load:.1f}/CPU)\n{first.tail()}"
    assert f"shutting down (grace {GRACE_S:.0f} s)" in first.log.read_text(errors="replace")
    follower.join(10)
    assert ended and followed == list(range(len(followed)))  # the stream ended; what it sent was in order

    at_exit = _db_items(db_path, job.job_id)
    done_at_exit = sum(s in FINISHED for s, _, _ in at_exit.values())
    running_at_exit = sum(s == "running" for s, _, _ in at_exit.values())
    assert 0 < done_at_exit < N_ITEMS, at_exit

    second = RouterProcess(tmp_path, port, "second")
    routers.append(second)
    t_restart = time.monotonic()
    serving_s = second.wait_serving()
    second.wait_done(job.job_id, at_least=N_ITEMS)
    complete_s = time.monotonic() - t_restart
    _check_results(second, job.job_id, items, SLOW_MAX_TOKENS)
    _check_attempts(at_exit, _db_items(db_path, job.job_id))
    print(
        f"\nSIGTERM: exit code {rc} after {exit_s:.1f} s (grace {GRACE_S} s; follow stream ended {ended[0].name});"
        f" {at_signal.succeeded + at_signal.failed} done at SIGTERM, {done_at_exit} done and {running_at_exit}"
        f" running at exit; restart SERVING in {serving_s:.1f} s, job complete {complete_s:.1f} s after restart"
    )
    rc2, _ = second.signal(signal.SIGTERM)
    assert rc2 == 0, second.tail()


def test_cancel_with_items_in_flight_leaves_every_bulk_worker_running(tmp_path: Path) -> None:
    """Regression: CancelBatch while items waited for the embedded engine's one slot made those items
    raise (ValueError from PrioritySlots.acquire), which killed their bulk workers for good: after a
    few cancels no worker was left and later jobs stayed QUEUED until a restart."""
    r = RunningRouter(make_config(tmp_path)).wait_ready()
    try:
        for seed in (5, 6):
            items = [pb.BatchItem(image=img) for img in _images(12, seed=seed)]
            options = pb.BatchOptions(default_question="q", generation=pb.GenerationOptions(max_tokens=64))
            job = _submit(r.stub, items, options)
            deadline = time.monotonic() + 30
            while r.stub.GetBatch(pb.GetBatchRequest(job_id=job.job_id), timeout=10).job.succeeded < 1:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            r.stub.CancelBatch(pb.CancelBatchRequest(job_id=job.job_id), timeout=10)
        time.sleep(0.5)
        dead = [t.get_name() for t in r.app.runner._tasks if t.done()]
        assert not dead, f"bulk workers died: {dead}"
        job = _submit(r.stub, [pb.BatchItem(image=img) for img in _images(6, seed=7)],
                      pb.BatchOptions(default_question="q", generation=pb.GenerationOptions(max_tokens=4)))  # fmt: skip
        final = list(r.stub.WatchBatch(pb.WatchBatchRequest(job_id=job.job_id), timeout=60))[-1].job
        assert (final.state, final.succeeded) == (pb.BATCH_STATE_COMPLETED, 6)
    finally:
        r.stop()
