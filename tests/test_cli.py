"""The console script as users run it: the demo (the quick start's main job), ask, batch, check-config."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench._servers import scene_jpegs
from tests.conftest import ROOT, SAMPLE, RunningRouter, free_port

CLI = [sys.executable, "-m", "router.cli.main"]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return (
        dict(
            os.environ,
            ROADWORK__SERVER__PORT=str(free_port()),
            ROADWORK__SERVER__METRICS_PORT="0",
            ROADWORK__STORAGE__PATH=str(tmp / "cli.sqlite3"),
        )
        | extra
    )


@pytest.mark.slow
def test_demo_serves_and_prints_streamed_events(tmp_path: Path) -> None:
    out = subprocess.run([*CLI, "demo", "--exit"], env=_env(tmp_path), cwd=ROOT, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "SERVING on 127.0.0.1:" in text
    assert text.count("[detection] P(roadwork)=") == 3 and text.count("[done] kind=MULTI_TURN") == 2
    assert "cached=true" in text  # the follow-up reused the session's detections
    assert "[answer] Yes, there is roadwork" in text  # the demo VLM, on the sample picture
    assert "image 640x480 -> 448x336" in text and "192 image tokens" in text
    assert "[done] kind=SINGLE_SHOT" in text and "verdict roadwork=true" in text
    assert "trained only on synthetic street scenes" in text  # demo models are said plainly


def test_check_config_names_bad_key(tmp_path: Path) -> None:
    bad = subprocess.run([*CLI, "check-config"], env=_env(tmp_path, ROADWORK__POOLS__VLLM__POLICY="fastest"),
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "pools.vllm.policy" in bad.stderr
    ok = subprocess.run([*CLI, "check-config"], env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "configuration OK" in ok.stdout


def test_help_lists_commands() -> None:
    out = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=60)
    for cmd in ("serve", "demo", "ask", "detect", "batch", "check-config", "status"):
        assert cmd in out.stdout


def test_ask_detect_and_batch_commands(router: RunningRouter, tmp_path: Path) -> None:
    addr = ["--addr", router.addr]
    ask = subprocess.run([*CLI, "ask", str(SAMPLE), "Any cones?", "--max-tokens", "4", *addr],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ask.returncode == 0, ask.stderr
    assert "[detection]" in ask.stdout and "[done] kind=SINGLE_SHOT pool=vllm" in ask.stdout
    det = subprocess.run([*CLI, "detect", str(SAMPLE), *addr], capture_output=True, text=True, timeout=120)
    assert det.returncode == 0, det.stderr
    assert '"roadworkProbability"' in det.stdout and '"verdict": "VERDICT_' in det.stdout
    status = subprocess.run([*CLI, "status", *addr], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert "serving: yes" in status.stdout and "route single_shot: vllm -> sglang -> lmdeploy" in status.stdout
    assert "pool vllm (embedded, least_loaded): breaker CLOSED" in status.stdout
    assert "  embedded: healthy, breaker CLOSED, in flight 0" in status.stdout
    assert "load 0, bulk 0 of 1" in status.stdout  # the embedded engine runs one generation at a time
    bad = subprocess.run([*CLI, "ask", str(SAMPLE), " ", *addr], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "INVALID_ARGUMENT: question is required" in bad.stderr
    assert bad.stderr.rstrip().endswith("[FIELD_MISSING]"), bad.stderr  # the ErrorInfo reason

    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(3):
        shutil.copy(SAMPLE, images / f"{i}.jpg")
    sub = subprocess.run([*CLI, "batch", "submit", str(images), "--detect-only", "--watch", *addr],
                         capture_output=True, text=True, timeout=180)  # fmt: skip
    assert sub.returncode == 0, sub.stderr
    assert "3 items accepted" in sub.stdout and "uploading" in sub.stderr  # tqdm bars go to stderr
    job = sub.stdout.split()[1].rstrip(":")
    res = subprocess.run([*CLI, "batch", "results", job, *addr], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.count('"ITEM_STATUS_SUCCEEDED"') == 3
    assert '"itemId": "0.jpg"' in res.stdout


@pytest.mark.slow
def test_worker_processes_share_the_port(tmp_path: Path) -> None:
    """server.workers = 2: two processes serve one port; new connections reach both (each keeps its
    own detection cache, so the same image is a cache miss once per process); the extra worker binds
    only once warmed up (no connection ever meets a NOT_SERVING process); a SIGKILLed worker is
    started again and serves; SIGTERM stops both. The first process's /metrics sums both processes'
    counters and histograms (the killed one's counts are kept), and shows each live process's own
    breakers (a pid label); its /readyz answers 503 until the router is SERVING, /healthz 200, and
    /readyz's body counts the processes serving."""
    import signal

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from router._proto.roadwork.v1 import router_pb2 as pb
    from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc

    env = _env(tmp_path, ROADWORK__SERVER__WORKERS="2", ROADWORK__SERVER__METRICS_PORT=str(free_port()),
               ROADWORK__DETECTION__PROCESS="local")  # fmt: skip
    addr = f"127.0.0.1:{env['ROADWORK__SERVER__PORT']}"
    http = f"http://127.0.0.1:{env['ROADWORK__SERVER__METRICS_PORT']}"
    proc = subprocess.Popen([*CLI, "serve"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    image = SAMPLE.read_bytes()

    def children() -> list[str]:
        return subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()

    def until_misses(want: int, deadline: float) -> tuple[int, int]:
        """Detect over new connections until `want` cache misses (processes answered); no NOT_SERVING."""
        misses, answered = 0, 0
        while time.time() < deadline and (answered < 24 or misses < want):
            # A new connection each time (channels otherwise share connections through a global pool).
            with grpc.insecure_channel(addr, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
                health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
                assert health.status == health_pb2.HealthCheckResponse.SERVING, "a connection met a warming worker"
                det = pb_grpc.RouterServiceStub(channel).Detect(pb.DetectRequest(image=image), timeout=60).detection
                misses += not det.cached
                answered += 1
        return misses, answered

    try:
        deadline = time.time() + 240
        readiness = probe_until_ready(http, proc, deadline)
        assert readiness[0] == 503 and readiness[-1] == 200, readiness
        first: list[str] = []
        while time.time() < deadline and not first:  # extra workers start once the first one is SERVING
            time.sleep(0.5)
            first = children()
        assert first, "no worker process started"
        misses, answered = until_misses(2, deadline)
        assert misses == 2, f"{misses} cache misses in {answered} connections: both processes should have answered"
        assert_summed(scrape(http), answered, misses=2, pids={proc.pid, int(first[0])})
        assert readyz(http) == "ok: 2 of 2 router processes serving"

        os.kill(int(first[0]), signal.SIGKILL)
        again: list[str] = []
        while time.time() < deadline and not again:
            time.sleep(0.5)
            again = [c for c in children() if c != first[0]]
        assert again, "the killed worker was not started again"
        assert readyz(http) == "ok: 1 of 2 router processes serving", "the new worker is still warming up"
        misses2, answered2 = until_misses(1, deadline)  # the first process's cache is warm: the new one misses
        assert misses2 == 1, f"{misses2} cache misses in {answered2} connections after the restart"
        assert_summed(scrape(http), answered + answered2, misses=3, pids={proc.pid, int(again[0])})
        assert readyz(http) == "ok: 2 of 2 router processes serving"

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        time.sleep(1)
        alive = [c for c in again if Path(f"/proc/{c}").exists() and "Z" not in Path(f"/proc/{c}/stat").read_text()]
        assert not alive, f"worker processes left running: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_worker_processes_share_one_detection_process(tmp_path: Path) -> None:
    """server.workers = 2 (detection.process auto: shared): one detection process serves both router
    processes, so over many connections the image is detected once; a detect-only bulk job runs;
    SIGTERM stops every process."""
    import grpc

    from router._proto.roadwork.v1 import router_pb2 as pb
    from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc

    env = _env(tmp_path, ROADWORK__SERVER__WORKERS="2")
    addr = f"127.0.0.1:{env['ROADWORK__SERVER__PORT']}"
    proc = subprocess.Popen([*CLI, "serve"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    image = SAMPLE.read_bytes()

    def family() -> list[str]:
        out = subprocess.run(["ps", "-ww", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout.splitlines()
        rows = [line.split(None, 2) for line in out[1:]]
        ours, found = {str(proc.pid)}, True
        while found:
            more = {r[0] for r in rows if r[1] in ours} - ours
            ours |= more
            found = bool(more)
        return [r[2] for r in rows if r[0] in ours]

    try:
        deadline = time.time() + 240
        while time.time() < deadline and sum("router.cli.main" in c for c in family()) < 2:
            time.sleep(0.5)  # the extra worker starts once the first is SERVING
        assert sum("router.flow.detection_process" in c for c in family()) == 2, family()  # the guard, the server
        misses = 0
        for _ in range(16):  # new connections, spread over both processes by the kernel
            with grpc.insecure_channel(addr, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
                stub = pb_grpc.RouterServiceStub(channel)
                det = stub.Detect(pb.DetectRequest(image=image), timeout=120, wait_for_ready=True).detection
                misses += not det.cached
        assert misses == 1, f"{misses} detections: the router processes should share the detection cache"
        images = tmp_path / "imgs"
        images.mkdir()
        for i, data in enumerate(scene_jpegs(4, seed=3)):
            (images / f"{i}.jpg").write_bytes(data)
        sub = subprocess.run([*CLI, "batch", "submit", str(images), "--detect-only", "--watch", "--addr", addr],
                             capture_output=True, text=True, timeout=180)  # fmt: skip
        assert sub.returncode == 0, sub.stderr
        job = sub.stdout.split()[1].rstrip(":")
        res = subprocess.run(
            [*CLI, "batch", "results", job, "--addr", addr], capture_output=True, text=True, timeout=60
        )
        assert res.returncode == 0 and res.stdout.count('"ITEM_STATUS_SUCCEEDED"') == 4, res.stdout
        left = family()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        time.sleep(1)
        pids = [c for c in left if "router.flow.detection_process" in c]
        assert pids and not [c for c in family() if "detection_process" in c]
    finally:
        if proc.poll() is None:
            proc.kill()


def probe_until_ready(http: str, proc: subprocess.Popen[bytes], deadline: float) -> list[int]:
    """/readyz's answers (each change once) from the first one until it says 200, while /healthz says 200."""
    import httpx

    seen: list[int] = []
    while time.time() < deadline and proc.poll() is None and seen[-1:] != [200]:
        try:
            assert httpx.get(f"{http}/healthz", timeout=5).status_code == 200
            code = httpx.get(f"{http}/readyz", timeout=5).status_code
        except httpx.TransportError:  # not listening yet
            time.sleep(0.2)
            continue
        if seen[-1:] != [code]:
            seen.append(code)
        time.sleep(0.2)
    return seen


def readyz(http: str) -> str:
    """/readyz's body."""
    import httpx

    return httpx.get(f"{http}/readyz", timeout=5).text.strip()


def scrape(http: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample on /metrics, by name and labels."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{http}/metrics", timeout=10).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


def assert_summed(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], answered: int, misses: int,
                  pids: set[int]) -> None:  # fmt: skip
    """The counters and histograms count every Detect of every process; the breaker gauge is per live process."""

    def value(name: str, **labels: str) -> float:
        return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)

    ok = {"rpc": "Detect", "code": "OK"}
    assert value("roadwork_requests_total", **ok) == answered
    assert value("roadwork_request_seconds_count", rpc="Detect") == answered
    assert value("roadwork_detection_cache_total", result="miss") == misses
    assert value("roadwork_detection_cache_total", result="hit") == answered - misses
    assert value("roadwork_detection_seconds_count") == misses
    assert value("roadwork_in_flight", rpc="Detect") == 0
    breakers = {dict(ls)["pid"] for (n, ls), _v in samples.items() if n == "roadwork_breaker_state"}
    assert breakers == {str(p) for p in pids}, breakers
    assert value("roadwork_breaker_state") == 0  # every breaker of every live process closed


@pytest.mark.parametrize("key", ["server.metrics_port", "server.host / server.port"])
def test_a_held_port_is_a_clear_start_up_error(tmp_path: Path, key: str) -> None:
    """A second router on the same host: the port another process holds is named, with its key and
    the holder's PID, not an OSError traceback."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = _env(tmp_path) | {f"ROADWORK__{key.split()[-1].upper().replace('.', '__')}": str(port)}
        out = subprocess.run([*CLI, "serve"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    line = _start_up_error(out, key)
    assert f"cannot listen on 127.0.0.1:{port}" in line and f"PID {os.getpid()}" in line


def _start_up_error(out: subprocess.CompletedProcess[str], key: str) -> str:
    """The one line a failed start printed: exit code 2, no traceback, naming `key`."""
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("roadwork-router: ")]
    assert len(lines) == 1 and lines[0].startswith(f"roadwork-router: {key}"), out.stderr
    return lines[0]


def _bad_files(tmp: Path, case: str) -> dict[str, str]:
    """Config overrides pointing at a bad file of each kind."""
    from tests.router.api.test_auth import _self_signed

    if case == "weights: a directory":
        return {"ROADWORK__DETECTORS__0__WEIGHTS": str(tmp)}
    if case == "weights: not a checkpoint":
        (tmp / "broken.pt").write_bytes(os.urandom(4096))
        return {"ROADWORK__DETECTORS__1__WEIGHTS": str(tmp / "broken.pt")}
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    cert, key = _self_signed(tmp / "a")
    if case == "tls: a key that is not PEM":
        key.write_text("not a key")
    elif case == "tls: another certificate's key":
        key = _self_signed(tmp / "b")[1]
    elif case == "tls: no certificate file":
        cert = tmp / "missing.pem"
    return {"ROADWORK__SERVER__TLS_CERT_FILE": str(cert), "ROADWORK__SERVER__TLS_KEY_FILE": str(key)}


@pytest.mark.parametrize(
    ("case", "key", "words"),
    [
        ("weights: a directory", "detectors[0].weights (yolo11n-roadwork)", "Is a directory"),
        ("weights: not a checkpoint", "detectors[1].weights (yolov8n-roadwork)", "cannot be loaded"),
        ("tls: a key that is not PEM", "server.tls_key_file", "holds no PEM private key"),
        ("tls: another certificate's key", "server.tls_cert_file / server.tls_key_file", "do not load as a pair"),
        ("tls: no certificate file", "server.tls_cert_file", "No such file"),
    ],
)
def test_a_bad_file_is_a_clear_start_up_error(tmp_path: Path, case: str, key: str, words: str) -> None:
    """Weights or TLS files that cannot serve stop `serve` with one line naming the key, exit code 2."""
    env = _env(tmp_path) | _bad_files(tmp_path, case)
    out = subprocess.run([*CLI, "serve"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert words in _start_up_error(out, key)
