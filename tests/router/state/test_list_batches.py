"""ListBatches over real gRPC: newest first, paged by token, filtered by state; bad pages are INVALID_ARGUMENT."""

from __future__ import annotations

import grpc
import pytest

from router._proto.roadwork.v1 import router_pb2 as pb
from tests.conftest import ErrorDetails, RunningRouter, make_config, rpc_error
from tests.router.state.test_batch import _images, _submit


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunningRouter, list[pb.BatchJob]]:
    """A router (not warmed up: no worker runs, jobs stay QUEUED) with jobs j0..j4, j1 and j3 canceled."""
    r = RunningRouter(make_config(tmp_path_factory.mktemp("list")))
    jobs = []
    for i in range(5):
        options = pb.BatchOptions(detect_only=True, display_name=f"j{i}")
        jobs.append(_submit(r.stub, [pb.BatchItem(image=img) for img in _images(2, seed=i)], options))
    for i in (1, 3):
        r.stub.CancelBatch(pb.CancelBatchRequest(job_id=jobs[i].job_id), timeout=10)
    yield r, jobs
    r.stop()


def _pages(r: RunningRouter, **kw: object) -> list[list[str]]:
    """Every page's display names, following next_page_token to the end."""
    pages, token = [], ""
    while True:
        reply = r.stub.ListBatches(pb.ListBatchesRequest(page_token=token, **kw), timeout=10)
        pages.append([j.display_name for j in reply.jobs])
        token = reply.next_page_token
        if not token:
            return pages


def test_jobs_are_listed_newest_first_a_page_at_a_time(listed: tuple[RunningRouter, list[pb.BatchJob]]) -> None:
    r, jobs = listed
    assert _pages(r, page_size=2) == [["j4", "j3"], ["j2", "j1"], ["j0"]]
    assert _pages(r) == [["j4", "j3", "j2", "j1", "j0"]]  # page_size 0: the default, 50
    first = r.stub.ListBatches(pb.ListBatchesRequest(page_size=1), timeout=10)
    assert first.jobs[0] == r.stub.GetBatch(pb.GetBatchRequest(job_id=jobs[4].job_id), timeout=10).job


def test_a_state_filter_lists_only_jobs_in_that_state(listed: tuple[RunningRouter, list[pb.BatchJob]]) -> None:
    r, _ = listed
    assert _pages(r, page_size=1, state=pb.BATCH_STATE_CANCELED) == [["j3"], ["j1"]]
    assert _pages(r, page_size=2, state=pb.BATCH_STATE_QUEUED) == [["j4", "j2"], ["j0"]]
    assert _pages(r, state=pb.BATCH_STATE_COMPLETED) == [[]]


def test_a_job_submitted_meanwhile_does_not_shift_later_pages(tmp_path_factory: pytest.TempPathFactory) -> None:
    r = RunningRouter(make_config(tmp_path_factory.mktemp("list-new")))
    try:
        for i in range(3):
            _submit(
                r.stub,
                [pb.BatchItem(image=_images(1, seed=i)[0])],
                pb.BatchOptions(detect_only=True, display_name=f"a{i}"),
            )
        first = r.stub.ListBatches(pb.ListBatchesRequest(page_size=2), timeout=10)
        _submit(
            r.stub, [pb.BatchItem(image=_images(1, seed=9)[0])], pb.BatchOptions(detect_only=True, display_name="new")
        )
        rest = r.stub.ListBatches(pb.ListBatchesRequest(page_size=2, page_token=first.next_page_token), timeout=10)
        assert [j.display_name for j in first.jobs] == ["a2", "a1"] and [j.display_name for j in rest.jobs] == ["a0"]
        assert not rest.next_page_token
    finally:
        r.stop()


@pytest.mark.parametrize(
    ("request_kw", "reason", "field"),
    [
        ({"page_token": "not-a-token"}, "REQUEST_MALFORMED", "page_token"),
        ({"page_token": "eyJ4IjogMX0="}, "REQUEST_MALFORMED", "page_token"),  # base64 JSON, not a cursor
        ({"page_size": 1001}, "OPTION_OUT_OF_RANGE", "page_size"),
        ({"state": 99}, "OPTION_OUT_OF_RANGE", "state"),
    ],
)
def test_bad_pages_are_invalid_argument_naming_the_field(
    listed: tuple[RunningRouter, list[pb.BatchJob]], request_kw: dict[str, object], reason: str, field: str
) -> None:
    r, _ = listed
    err = rpc_error(lambda: r.stub.ListBatches(pb.ListBatchesRequest(**request_kw), timeout=10))
    details = ErrorDetails(err)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and details.reason == reason and details.field == field  # type: ignore[attr-defined]


def test_a_token_is_refused_with_another_state_filter(listed: tuple[RunningRouter, list[pb.BatchJob]]) -> None:
    r, _ = listed
    token = r.stub.ListBatches(pb.ListBatchesRequest(page_size=1), timeout=10).next_page_token
    assert token
    other = pb.ListBatchesRequest(page_size=1, page_token=token, state=pb.BATCH_STATE_QUEUED)
    details = ErrorDetails(rpc_error(lambda: r.stub.ListBatches(other, timeout=10)))
    assert details.reason == "REQUEST_MALFORMED" and details.field == "page_token"
