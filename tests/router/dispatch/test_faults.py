"""Fault injection with real processes: a vLLM replica SIGKILLed mid-stream and restarted, and one
SIGSTOPped (hung), behind one pool of two replicas; the router's breakers, retries and deadlines."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from engines.base import GenerationRequest
from engines.openai_http import OpenAIHTTPEngine
from router._proto.roadwork.v1 import router_pb2 as pb
from tests.conftest import RunningRouter, VLLMServer, ask, make_config, require_vllm_python

pytestmark = pytest.mark.slow
SHORT = pb.GenerationOptions(max_tokens=4)


@pytest.fixture(scope="module")
def replica_a(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    """A second real vLLM server, ours to kill, hang and restart (the session's stays healthy)."""
    server = VLLMServer(require_vllm_python(), tiny_model, tmp_path_factory.mktemp("vllm-a") / "vllm.log")
    try:
        yield server.wait()
    finally:
        if server.proc.poll() is None:
            server.signal(signal.SIGCONT)
        server.stop()


def two_replica_router(tmp: Path, a: VLLMServer, b: VLLMServer, **env: str) -> RunningRouter:
    settings = {
        "ROADWORK__POOLS__VLLM__ENGINE": "vllm",
        "ROADWORK__POOLS__VLLM__REPLICAS": json.dumps([a.url, b.url]),
        "ROADWORK__POOLS__VLLM__POLICY": "round_robin",
        "ROADWORK__POOLS__VLLM__METRICS_INTERVAL_S": "0",
        "ROADWORK__POOLS__VLLM__FIRST_TOKEN_TIMEOUT_S": "4",
        "ROADWORK__POOLS__VLLM__EXTRA_BODY": '{"ignore_eos": true}',
        "ROADWORK__ROUTING__SINGLE_SHOT": '["vllm"]',
        "ROADWORK__ROUTING__MULTI_TURN": '["vllm"]',
        "ROADWORK__ROUTING__BATCH": '["vllm"]',
        "ROADWORK__GENERATION__MAX_TOKENS_CAP": "16000",
        "ROADWORK__BREAKER__CONSECUTIVE_FAILURES": "2",
        "ROADWORK__BREAKER__COOLDOWN_S": "2",
        "ROADWORK__BREAKER__PROBE_SUCCESSES": "1",
    }
    return RunningRouter(make_config(tmp, **{**settings, **env})).wait_ready()


def replica_status(r: RunningRouter, url: str) -> pb.ReplicaStatus:
    status = r.stub.GetStatus(pb.GetStatusRequest(), timeout=10)
    return next(rep for rep in status.replicas if rep.name == url and "vllm" in rep.pools)


def transitions(r: RunningRouter, url: str) -> dict[str, float]:
    """roadwork_breaker_transitions_total for one replica, by target state."""
    reg = r.app.metrics.registry
    labels = {"scope": "replica", "name": url}
    return {to: reg.get_sample_value("roadwork_breaker_transitions_total", {**labels, "to": to}) or 0.0
            for to in ("open", "half_open", "closed")}  # fmt: skip


MIGRATED_TOKENS = 600  # the migrated answer's length: several seconds on the tiny model, 2 CPU cores


def recording_bodies(r: RunningRouter, url: str) -> list[dict[str, Any]]:
    """The JSON bodies router `r` sends to replica `url` from now on (the real engine still sends them)."""
    engine = next(rep.engine for rep in r.app.pools["vllm"].replicas if rep.name == url)
    assert isinstance(engine, OpenAIHTTPEngine)
    bodies: list[dict[str, Any]] = []
    payload = engine.payload

    def spy(request: GenerationRequest, rid: str = "") -> dict[str, Any]:
        bodies.append(body := payload(request, rid))
        return body

    engine.payload = spy  # type: ignore[method-assign]
    return bodies


def streamed_text(url: str, body: dict[str, Any]) -> str:
    """The text vLLM streams for `body`, sent straight to it."""
    out = []
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=120) as resp:
        for line in resp.iter_lines():
            if line.startswith("data:") and line.strip() != "data: [DONE]":
                out += [(c.get("delta") or {}).get("content") or "" for c in json.loads(line[5:])["choices"]]
    return "".join(out)


def deltas_then(call: Any, n: int) -> str:
    """Read `n` delta events of an Ask stream; their text."""
    text = ""
    for event in call:
        if event.WhichOneof("event") == "delta":
            text += event.delta.text
            n -= 1
            if n == 0:
                return text
    raise AssertionError("the stream ended early")


def test_sigkill_mid_stream_then_failover_breaker_opens_and_closes_after_restart(
    replica_a: VLLMServer, vllm_server: VLLMServer, sample_jpeg: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two routers on the same two replicas, each with a stream on replica a when it is SIGKILLed: the
    migrating one (the default) finishes its answer on b, the other ends UNAVAILABLE."""
    a, b = replica_a, vllm_server
    r = two_replica_router(tmp_path_factory.mktemp("kill"), a, b, ROADWORK__POOLS__VLLM__MIGRATE_ON_FAILURE="false")
    m = two_replica_router(tmp_path_factory.mktemp("migrate"), a, b)
    try:
        r.stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=60)  # detection cached from here on
        greedy = pb.GenerationOptions(max_tokens=MIGRATED_TOKENS, temperature=0.0)
        question = pb.AskRequest(image=sample_jpeg, question="Describe the roadwork.", generation=greedy)
        # Round robin starts at the first replica: the uninterrupted answer comes from a, a short one
        # from b, then the one to migrate runs on a again.
        t0 = time.monotonic()
        whole = list(m.stub.Ask(question, timeout=120))[-1].done.answer
        uninterrupted_s = time.monotonic() - t0
        assert ask(m.stub, image=sample_jpeg, question="Short.", generation=SHORT)[-1].done.route.replica == b.url
        to_b = recording_bodies(m, b.url)
        migrating = m.stub.Ask(question, timeout=120)
        long_ask = pb.AskRequest(
            image=sample_jpeg, question="Describe it.", generation=pb.GenerationOptions(max_tokens=10000)
        )
        call = r.stub.Ask(long_ask, timeout=120)  # on replica a too
        before = deltas_then(migrating, 3)
        deltas_then(call, 3)
        killed_at = time.monotonic()
        a.kill()

        events = list(migrating)
        moved = time.monotonic() - killed_at
        done = events[-1].done
        answer = before + "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta")
        assert answer == done.answer, "the client's stream is the answer: no gap, no repeated text"
        (move,) = done.route.migrations
        assert (move.from_replica, move.to_pool, move.to_replica) == (a.url, "vllm", b.url)
        assert done.route.replica == b.url and 0 < move.tokens_kept < MIGRATED_TOKENS
        assert done.usage.completion_tokens == MIGRATED_TOKENS and done.finish_reason == pb.FINISH_REASON_LENGTH
        kept = answer[: move.chars_kept]
        assert len(kept) >= len(before) and whole.startswith(kept), "a's part is the uninterrupted answer's"
        (body,) = to_b
        assert body["continue_final_message"] and body["messages"][-1] == {"role": "assistant", "content": kept}
        assert body["max_tokens"] == MIGRATED_TOKENS - move.tokens_kept
        # Greedy: b continues the partial answer exactly as an engine given the same text does (one at a
        # time on b: a request batched beside it can flip a near-tie of the random model's logits).
        assert answer[move.chars_kept :] == streamed_text(b.url, body)
        same = answer == whole
        common = next((i for i, (x, y) in enumerate(zip(answer, whole, strict=False)) if x != y), len(whole))
        print(f"migrated after {move.tokens_kept} tokens ({move.chars_kept} chars), finished {moved:.1f} s after"
              f" the kill (uninterrupted answer: {uninterrupted_s:.1f} s); equal to the uninterrupted answer: {same}"
              f" (first {common} of {len(whole)} chars)")  # fmt: skip
        with pytest.raises(grpc.RpcError) as exc:
            rest = list(call)
            pytest.fail(f"the stream survived its replica's death: {rest[-1] if rest else 'no events'}")
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        details = exc.value.details()  # type: ignore[attr-defined]
        assert "engine pool 'vllm' is unavailable" in details and a.url in details, details
        # Counted against the pool the answer was committed to (the label used to be lost: pool="").
        failed = {"rpc": "Ask", "kind": "single_shot", "code": "UNAVAILABLE"}
        requests = r.app.metrics.registry.get_sample_value
        assert requests("roadwork_requests_total", {**failed, "pool": "vllm"}) == 1
        assert requests("roadwork_requests_total", {**failed, "pool": ""}) is None
        # Requests after the crash fail over before their first token: every one is answered by b.
        for i in range(4):
            done = ask(r.stub, image=sample_jpeg, question=f"After the crash {i}?", generation=SHORT, strict=True)[
                -1
            ].done
            assert done.route.replica == b.url and not done.degraded
        rep = replica_status(r, a.url)
        assert rep.breaker == pb.BREAKER_STATE_OPEN or not rep.healthy
        # Opened by a second failure, unless r's health check marked a down first (while the migrated
        # answer finished, r may not have tried a again).
        opened = transitions(r, a.url).get("open", 0)
        assert opened >= 1 or not rep.healthy
        opened_after_s = time.monotonic() - killed_at

        b.settle(timeout=60)

        a.restart().wait()
        restarted_at = time.monotonic()
        served_by_a = False
        while time.monotonic() - restarted_at < 60 and not served_by_a:
            done = ask(r.stub, image=sample_jpeg, question="Back?", generation=SHORT, strict=True)[-1].done
            served_by_a = done.route.replica == a.url
            time.sleep(0.3)
        assert served_by_a, "replica a never served again after its restart"
        assert replica_status(r, a.url).breaker == pb.BREAKER_STATE_CLOSED
        seen = transitions(r, a.url)
        # Closed by its health check passing again (at once), or by a probe after the cooldown.
        assert seen.get("closed", 0) >= 1 or not opened, seen
        print(f"breaker open within {opened_after_s:.1f} s of the kill; back {time.monotonic() - restarted_at:.1f} s"
              f" after the restart; transitions {seen}")  # fmt: skip
    finally:
        r.stop()
        m.stop()


def test_a_hung_replica_never_holds_a_request_past_its_deadline(
    replica_a: VLLMServer, vllm_server: VLLMServer, sample_jpeg: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    a, b = replica_a, vllm_server
    if a.proc.poll() is not None:
        a.restart().wait()
    r = two_replica_router(tmp_path_factory.mktemp("hang"), a, b)
    only_a = two_replica_router(tmp_path_factory.mktemp("hang-a"), a, a)
    try:
        r.stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=60)
        only_a.stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=60)
        a.signal(signal.SIGSTOP)
        # Right after the hang, before health checks notice it: with nowhere else to go, the client's
        # deadline bounds the wait (strict mode: no degraded answer).
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as exc:
            ask(only_a.stub, timeout=2.0, image=sample_jpeg, question="Anyone?", generation=SHORT, strict=True)
        waited = time.monotonic() - t0
        assert exc.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)  # type: ignore[attr-defined]
        assert waited < 3.0, waited

        latencies = []
        for i in range(6):
            t0 = time.monotonic()
            done = ask(r.stub, timeout=10, image=sample_jpeg, question=f"Hung {i}?", generation=SHORT, strict=True)[
                -1
            ].done
            latencies.append(time.monotonic() - t0)
            assert done.route.replica == b.url
        assert max(latencies) < 10, latencies
        assert sorted(latencies)[len(latencies) // 2] < 2, f"traffic kept waiting on the hung replica: {latencies}"
        rep = replica_status(r, a.url)
        assert rep.breaker == pb.BREAKER_STATE_OPEN or not rep.healthy

        print(f"hung replica: latencies {[round(x, 2) for x in latencies]} s; lone-replica wait {waited:.2f} s")
    finally:
        a.signal(signal.SIGCONT)
        r.stop()
        only_a.stop()


def test_a_replica_back_from_sigstop_serves_as_soon_as_it_is_healthy(
    replica_a: VLLMServer, sample_jpeg: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The pool's only replica hangs (SIGSTOP) until requests degrade and both breakers are open, then
    resumes (SIGCONT): served again within a few health checks, not after the 30 s cooldown."""
    a = replica_a
    if a.proc.poll() is not None:
        a.restart().wait()
    r = two_replica_router(
        tmp_path_factory.mktemp("recover"), a, a, ROADWORK__BREAKER__COOLDOWN_S="30",
        ROADWORK__BREAKER__PROBE_SUCCESSES="2", ROADWORK__POOLS__VLLM__FIRST_TOKEN_TIMEOUT_S="1",
        ROADWORK__RETRY__MAX_ATTEMPTS="1",
    )  # fmt: skip
    quick = {"image": sample_jpeg, "question": "Back?", "generation": SHORT}
    try:
        assert not ask(r.stub, **quick)[-1].done.degraded
        a.signal(signal.SIGSTOP)
        stopped = time.monotonic()
        while time.monotonic() - stopped < 60:
            done = ask(r.stub, timeout=5, **quick)[-1].done
            rep = replica_status(r, a.url)
            if done.degraded and not rep.healthy and rep.breaker == pb.BREAKER_STATE_OPEN:
                break
        else:
            pytest.fail(f"the hung replica was never marked down: {rep}")
        pool_breaker = r.app.pools["vllm"].breaker.state.name
        a.signal(signal.SIGCONT)
        resumed = time.monotonic()
        healthy_at = None
        degraded_after_healthy = 0
        while time.monotonic() - resumed < 60:
            if healthy_at is None and a.healthy(timeout=0.2):
                healthy_at = time.monotonic()
            done = ask(r.stub, timeout=5, **quick)[-1].done
            if not done.degraded:
                break
            degraded_after_healthy += healthy_at is not None
        served_at = time.monotonic()
        assert not done.degraded and done.route.replica == a.url, "never served again after SIGCONT"
        healthy_at = healthy_at or served_at
        # Generous on a loaded 2-core box; the old rules waited out the 30 s cooldown, then probes.
        assert served_at - healthy_at < 10, (served_at - healthy_at, degraded_after_healthy)
        print(f"\nSIGCONT -> healthy {healthy_at - resumed:.2f} s, healthy -> first engine answer"
              f" {served_at - healthy_at:.2f} s ({degraded_after_healthy} degraded in between); pool breaker"
              f" was {pool_breaker}")  # fmt: skip
    finally:
        a.signal(signal.SIGCONT)
        r.stop()
