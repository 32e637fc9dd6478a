"""`detection.process = "shared"`: the router's detection runs in a real detection process it
starts; killed, the requests it had fail UNAVAILABLE, and the router answers again once it is
started again."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from bench._servers import scene_jpegs
from router._proto.roadwork.v1 import router_pb2 as pb
from tests.conftest import ErrorDetails, RunningRouter, make_config


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    config = make_config(tmp_path_factory.mktemp("shared"), ROADWORK__DETECTION__PROCESS="shared")
    r = RunningRouter(config).wait_ready()
    yield r
    r.stop()


def _server_pid(router: RunningRouter) -> int:
    """The detection server's own pid: the child of the orphan guard the router started."""
    process = router.app.detection_process
    assert process is not None and process.pid is not None
    out = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert len(out) == 1, out
    return int(out[0])


def test_detect_runs_in_the_detection_process(shared: RunningRouter, sample_jpeg: bytes) -> None:
    first = shared.stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=60).detection
    again = shared.stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=60).detection
    assert len(first.votes) == 2 and not first.cached and again.cached
    assert first.roadwork_probability == again.roadwork_probability
    assert Path(f"/proc/{_server_pid(shared)}").exists()


def test_killing_it_fails_its_requests_unavailable_then_it_is_back(shared: RunningRouter) -> None:
    images = scene_jpegs(9, seed=5)

    def detect(data: bytes) -> grpc.StatusCode:
        try:
            shared.stub.Detect(pb.DetectRequest(image=data), timeout=60)
            return grpc.StatusCode.OK
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
                details = ErrorDetails(exc)
                assert "detection process" in details.status.message and details.info.metadata["stage"] == "detection"
            return exc.code()  # type: ignore[attr-defined, no-any-return]

    pid = _server_pid(shared)
    with ThreadPoolExecutor(8) as pool:
        in_flight = [pool.submit(detect, d) for d in images[:8]]
        time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        codes = [f.result() for f in in_flight]
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE} and grpc.StatusCode.UNAVAILABLE in codes
    assert detect(images[8]) == grpc.StatusCode.UNAVAILABLE  # while it starts again
    deadline = time.monotonic() + 180
    while detect(images[8]) != grpc.StatusCode.OK:
        assert time.monotonic() < deadline, "the detection process did not come back"
        time.sleep(0.5)
    assert shared.app.detection_process is not None and shared.app.detection_process.restarts == 1
    assert _server_pid(shared) != pid
