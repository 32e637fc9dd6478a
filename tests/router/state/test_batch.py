"""Bulk jobs over real gRPC: submit (client streaming), watch, results, cancel, restart, bad input."""

from __future__ import annotations

import io
import sqlite3
import time
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from PIL import Image

from router._proto.roadwork.v1 import router_pb2 as pb
from tests.conftest import RunningRouter, make_config


def _images(n: int, seed: int = 0) -> list[bytes]:
    out = []
    for i in range(n):
        buf = io.BytesIO()
        Image.new("RGB", (96, 64), ((seed * 37 + i * 11) % 256, (i * 53) % 256, 90)).save(buf, "JPEG")
        out.append(buf.getvalue())
    return out


def _submit(stub: object, items: list[pb.BatchItem], options: pb.BatchOptions | None = None) -> pb.BatchJob:
    def msgs() -> Iterator[pb.SubmitBatchRequest]:
        if options is not None:
            yield pb.SubmitBatchRequest(options=options)
        for it in items:
            yield pb.SubmitBatchRequest(item=it)

    return stub.SubmitBatch(msgs(), timeout=60).job  # type: ignore[attr-defined,no-any-return]


def _reason(status: object) -> str:
    """The ErrorInfo reason in a bulk item's google.rpc.Status (its only detail)."""
    (detail,) = status.details  # type: ignore[attr-defined]
    info = error_details_pb2.ErrorInfo()
    assert detail.Unpack(info) and info.domain == "roadwork.v1"
    return str(info.reason)


def _wait_done(stub: object, job_id: str, timeout: float = 180) -> list[pb.BatchJob]:
    seen = [m.job for m in stub.WatchBatch(pb.WatchBatchRequest(job_id=job_id), timeout=timeout)]  # type: ignore[attr-defined]
    return seen


def test_batch_end_to_end(router: RunningRouter) -> None:
    imgs = _images(5)
    items = [pb.BatchItem(image=img, item_id=f"f{i}.jpg") for i, img in enumerate(imgs)]
    items[2].question = "Are workers present?"
    job = _submit(router.stub, items, pb.BatchOptions(default_question="Roadwork?", display_name="t",
                                                       generation=pb.GenerationOptions(max_tokens=4)))  # fmt: skip
    assert job.job_id.startswith("job_") and job.total == 5 and job.display_name == "t"
    assert job.state in (pb.BATCH_STATE_QUEUED, pb.BATCH_STATE_RUNNING, pb.BATCH_STATE_COMPLETED)
    progress = _wait_done(router.stub, job.job_id)
    assert progress[-1].state == pb.BATCH_STATE_COMPLETED and progress[-1].succeeded == 5
    done_counts = [p.succeeded for p in progress]
    assert done_counts == sorted(done_counts)  # progress only moves forward
    results = [
        m.result for m in router.stub.ListBatchResults(pb.ListBatchResultsRequest(job_id=job.job_id), timeout=30)
    ]
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    assert [r.item_id for r in results] == [f"f{i}.jpg" for i in range(5)]
    for r in results:
        assert r.status == pb.ITEM_STATUS_SUCCEEDED and not r.HasField("error")
        assert r.route.kind == pb.REQUEST_KIND_BATCH and r.route.pool == "lmdeploy"
        assert 0 < r.usage.completion_tokens <= 4 and len(r.detection.image_sha256) == 64
    # Resumable: from an offset, with a limit.
    tail = [m.result.index for m in router.stub.ListBatchResults(
        pb.ListBatchResultsRequest(job_id=job.job_id, offset=3), timeout=30)]  # fmt: skip
    assert tail == [3, 4]
    page = [m.result.index for m in router.stub.ListBatchResults(
        pb.ListBatchResultsRequest(job_id=job.job_id, offset=1, limit=2), timeout=30)]  # fmt: skip
    assert page == [1, 2]
    got = router.stub.GetBatch(pb.GetBatchRequest(job_id=job.job_id), timeout=10).job
    assert got.state == pb.BATCH_STATE_COMPLETED and got.total == 5 and got.pending == 0


def test_a_blank_item_question_uses_the_default_question(router: RunningRouter) -> None:
    """An item question of only whitespace counts as none (it failed with "question is required")."""
    options = pb.BatchOptions(default_question="Roadwork?", generation=pb.GenerationOptions(max_tokens=2))
    job = _submit(router.stub, [pb.BatchItem(image=_images(1, seed=77)[0], question=" \t ")], options)
    assert _wait_done(router.stub, job.job_id)[-1].succeeded == 1


def test_batch_follow_streams_every_item_in_order(router: RunningRouter) -> None:
    job = _submit(router.stub, [pb.BatchItem(image=img) for img in _images(4, seed=3)],
                  pb.BatchOptions(detect_only=True))  # fmt: skip
    results = [m.result for m in router.stub.ListBatchResults(
        pb.ListBatchResultsRequest(job_id=job.job_id, follow=True), timeout=120)]  # fmt: skip
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert all(r.status == pb.ITEM_STATUS_SUCCEEDED and r.answer == "" and r.detection.votes for r in results)


def test_batch_undecodable_item_fails_alone(router: RunningRouter) -> None:
    imgs = _images(2, seed=5)
    items = [pb.BatchItem(image=imgs[0]), pb.BatchItem(image=b"definitely not a jpeg"), pb.BatchItem(image=imgs[1])]
    job = _submit(router.stub, items, pb.BatchOptions(detect_only=True))
    final = _wait_done(router.stub, job.job_id)[-1]
    assert (final.state, final.succeeded, final.failed) == (pb.BATCH_STATE_COMPLETED, 2, 1)
    bad = [m.result for m in router.stub.ListBatchResults(pb.ListBatchResultsRequest(job_id=job.job_id), timeout=30)][1]
    assert bad.status == pb.ITEM_STATUS_FAILED and bad.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "item.image could not be decoded" in bad.error.message
    assert _reason(bad.error) == "IMAGE_UNDECODABLE" and not bad.HasField("detection")


def test_an_item_over_its_deadline_fails_alone_and_frees_its_slot(router: RunningRouter) -> None:
    """options.item_timeout: an item that takes longer (here every one: 1 µs holds no decode or detection)
    is stopped and fails DEADLINE_EXCEEDED; the job completes, and the next job's items run."""
    from datetime import timedelta

    options = pb.BatchOptions(detect_only=True)
    options.item_timeout.FromTimedelta(timedelta(microseconds=1))
    job = _submit(router.stub, [pb.BatchItem(image=img) for img in _images(3, seed=91)], options)
    final = _wait_done(router.stub, job.job_id)[-1]
    assert (final.state, final.succeeded, final.failed) == (pb.BATCH_STATE_COMPLETED, 0, 3)
    results = [
        m.result for m in router.stub.ListBatchResults(pb.ListBatchResultsRequest(job_id=job.job_id), timeout=30)
    ]
    assert {(r.error.code, _reason(r.error)) for r in results} == {
        (grpc.StatusCode.DEADLINE_EXCEEDED.value[0], "DEADLINE_EXCEEDED")
    }
    assert "longer than 1e-06 s" in results[0].error.message and "options.item_timeout" in results[0].error.message
    after = _submit(
        router.stub, [pb.BatchItem(image=img) for img in _images(2, seed=92)], pb.BatchOptions(detect_only=True)
    )
    assert _wait_done(router.stub, after.job_id)[-1].succeeded == 2


@pytest.mark.parametrize("seconds", [-1, 2 * 86400])
def test_an_item_timeout_out_of_range_is_invalid(router: RunningRouter, seconds: int) -> None:
    from datetime import timedelta

    options = pb.BatchOptions(detect_only=True)
    options.item_timeout.FromTimedelta(timedelta(seconds=seconds))
    with pytest.raises(grpc.RpcError) as exc:
        _submit(router.stub, [pb.BatchItem(image=_images(1)[0])], options)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "options.item_timeout" in exc.value.details()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("items", "options", "code", "words"),
    [
        ([], None, grpc.StatusCode.INVALID_ARGUMENT, "no items"),
        ([pb.BatchItem(image=b"")], pb.BatchOptions(default_question="q"), grpc.StatusCode.INVALID_ARGUMENT, "item 0"),
        ([pb.BatchItem(image=b"x", item_id="a.jpg")], None, grpc.StatusCode.INVALID_ARGUMENT, "no question"),
    ],
)
def test_batch_bad_jobs(
    router: RunningRouter, items: list[pb.BatchItem], options: pb.BatchOptions | None, code: grpc.StatusCode, words: str
) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        _submit(router.stub, items, options)
    assert exc.value.code() == code  # type: ignore[attr-defined]
    assert words in exc.value.details()  # type: ignore[attr-defined]


def test_batch_options_must_come_first(router: RunningRouter) -> None:
    def msgs() -> Iterator[pb.SubmitBatchRequest]:
        yield pb.SubmitBatchRequest(item=pb.BatchItem(image=b"x", question="q"))
        yield pb.SubmitBatchRequest(options=pb.BatchOptions())

    with pytest.raises(grpc.RpcError) as exc:
        router.stub.SubmitBatch(msgs(), timeout=10)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "first message" in exc.value.details()  # type: ignore[attr-defined]


def test_empty_job_id_is_invalid(router: RunningRouter) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        router.stub.GetBatch(pb.GetBatchRequest(), timeout=10)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "job_id is required" in exc.value.details()  # type: ignore[attr-defined]


def test_unknown_job_ids(router: RunningRouter) -> None:
    for call, req in [
        (router.stub.GetBatch, pb.GetBatchRequest(job_id="job_nope")),
        (router.stub.CancelBatch, pb.CancelBatchRequest(job_id="job_nope")),
    ]:
        with pytest.raises(grpc.RpcError) as exc:
            call(req, timeout=10)
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND and "job_nope" in exc.value.details()  # type: ignore[attr-defined]
    for stream, req2 in [
        (router.stub.WatchBatch, pb.WatchBatchRequest(job_id="job_nope")),
        (router.stub.ListBatchResults, pb.ListBatchResultsRequest(job_id="job_nope")),
    ]:
        with pytest.raises(grpc.RpcError) as exc:
            list(stream(req2, timeout=10))
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]


def test_oversized_job_is_rejected_and_nothing_is_kept(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("big")
    r = RunningRouter(make_config(tmp, ROADWORK__LIMITS__MAX_BATCH_ITEMS="3"))
    try:
        with pytest.raises(grpc.RpcError) as exc:
            _submit(r.stub, [pb.BatchItem(image=img) for img in _images(4)], pb.BatchOptions(detect_only=True))
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
        assert "max_batch_items" in exc.value.details()  # type: ignore[attr-defined]
    finally:
        r.stop()
    with sqlite3.connect(tmp / "router.sqlite3") as db:  # the staged job was rolled back
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0


def test_cancel_job(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Not warmed up yet: no worker runs, so every item is still pending when we cancel.
    r = RunningRouter(make_config(tmp_path_factory.mktemp("cancel")))
    try:
        job = _submit(r.stub, [pb.BatchItem(image=img) for img in _images(3)], pb.BatchOptions(detect_only=True))
        canceled = r.stub.CancelBatch(pb.CancelBatchRequest(job_id=job.job_id), timeout=10).job
        assert canceled.state == pb.BATCH_STATE_CANCELED and canceled.canceled == 3
        with pytest.raises(grpc.RpcError) as exc:
            r.stub.CancelBatch(pb.CancelBatchRequest(job_id=job.job_id), timeout=10)
        assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
        r.wait_ready()
        time.sleep(0.5)
        results = [m.result for m in r.stub.ListBatchResults(pb.ListBatchResultsRequest(job_id=job.job_id), timeout=10)]
        assert [x.status for x in results] == [pb.ITEM_STATUS_CANCELED] * 3
    finally:
        r.stop()


def test_restart_resumes_jobs_and_sessions(tmp_path_factory: pytest.TempPathFactory, sample_jpeg: bytes) -> None:
    tmp = tmp_path_factory.mktemp("restart")
    cfg = make_config(tmp)
    first = RunningRouter(cfg)  # serves at once; its bulk workers start only after warm-up
    job = _submit(first.stub, [pb.BatchItem(image=img, item_id=str(i)) for i, img in enumerate(_images(6, 9))],
                  pb.BatchOptions(detect_only=True))  # fmt: skip
    session = first.stub.CreateSession(pb.CreateSessionRequest(image=sample_jpeg), timeout=60).session
    first.stop()
    with sqlite3.connect(tmp / "router.sqlite3") as db:  # items a crashed router held mid-flight (unless a
        # loaded machine let warm-up finish and run them already; test_durability.py has the real SIGKILL)
        db.execute("UPDATE items SET status = 'running' WHERE idx < 2 AND status = 'pending'")
    second = RunningRouter(cfg).wait_ready()
    try:
        final = _wait_done(second.stub, job.job_id)[-1]
        assert (final.state, final.succeeded, final.total) == (pb.BATCH_STATE_COMPLETED, 6, 6)
        results = [
            m.result for m in second.stub.ListBatchResults(pb.ListBatchResultsRequest(job_id=job.job_id), timeout=10)
        ]
        assert [x.item_id for x in results] == [str(i) for i in range(6)]  # every item, exactly once
        follow_up = pb.AskRequest(
            question="still here?", session_id=session.session_id, generation=pb.GenerationOptions(max_tokens=2)
        )
        events = list(second.stub.Ask(follow_up, timeout=60))
        assert events[0].detected.detection.image_sha256 == session.image_sha256
    finally:
        second.stop()


def test_interactive_requests_are_not_starved_by_a_bulk_job(router: RunningRouter, sample_jpeg: bytes) -> None:
    """The embedded engine runs one generation at a time; an Ask waits for at most one bulk item."""
    items = [pb.BatchItem(image=img) for img in _images(60, seed=21)]
    job = _submit(router.stub, items, pb.BatchOptions(default_question="Roadwork?",
                                                       generation=pb.GenerationOptions(max_tokens=48)))  # fmt: skip
    time.sleep(0.3)  # let the bulk job fill the queue
    now = pb.AskRequest(image=sample_jpeg, question="now?", generation=pb.GenerationOptions(max_tokens=4))
    events = list(router.stub.Ask(now, timeout=60))
    pending = router.stub.GetBatch(pb.GetBatchRequest(job_id=job.job_id), timeout=10).job.pending
    assert events[-1].done.usage.completion_tokens > 0
    assert pending > 10, f"the Ask finished only after the bulk job drained (pending={pending})"
    router.stub.CancelBatch(pb.CancelBatchRequest(job_id=job.job_id), timeout=10)
