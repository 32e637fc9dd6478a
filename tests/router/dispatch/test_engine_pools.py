"""The router dispatching to real engine servers: vLLM (CPU) pools, fallback, degraded answers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import grpc
import pytest

from router._proto.roadwork.v1 import router_pb2 as pb
from tests.conftest import RunningRouter, TCPProxy, VLLMServer, ask, free_port, make_config


def _dead() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def vllm_router(vllm_server: VLLMServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    """single_shot and multi_turn on the real vLLM server; a dead pool first in single_shot's order."""
    cfg = make_config(
        tmp_path_factory.mktemp("vllm-router"),
        ROADWORK__POOLS__VLLM__ENGINE="openai_http",
        ROADWORK__POOLS__VLLM__REPLICAS=json.dumps([vllm_server.url]),
        ROADWORK__POOLS__SGLANG__ENGINE="openai_http",
        ROADWORK__POOLS__SGLANG__REPLICAS=json.dumps([vllm_server.url]),
        ROADWORK__POOLS__DEAD__ENGINE="openai_http",
        ROADWORK__POOLS__DEAD__REPLICAS=json.dumps([_dead()]),
        ROADWORK__ROUTING__SINGLE_SHOT='["dead", "vllm"]',
        ROADWORK__ROUTING__BATCH='["vllm", "lmdeploy"]',
    )
    r = RunningRouter(cfg).wait_ready()
    yield r
    r.stop()


@pytest.mark.slow
def test_single_shot_falls_back_to_vllm(
    vllm_router: RunningRouter, vllm_server: VLLMServer, sample_jpeg: bytes
) -> None:
    events = ask(vllm_router.stub, image=sample_jpeg, question="Is there roadwork?",
                 generation=pb.GenerationOptions(max_tokens=8))  # fmt: skip
    done = events[-1].done
    assert done.route.kind == pb.REQUEST_KIND_SINGLE_SHOT
    assert (done.route.pool, done.route.engine, done.route.replica) == ("vllm", pb.ENGINE_OPENAI_HTTP, vllm_server.url)
    assert list(done.route.fallback_from) == ["dead"] and done.route.model == "tiny"
    assert done.usage.completion_tokens == 8 and done.usage.prompt_tokens > 50
    assert not any("placeholder model" in n for n in done.notices)  # a real engine answered


@pytest.mark.slow
def test_multi_turn_follow_ups_hit_the_prefix_cache(vllm_router: RunningRouter, sample_jpeg: bytes) -> None:
    opts = pb.GenerationOptions(max_tokens=4)
    first = ask(vllm_router.stub, image=sample_jpeg, question="Is the work zone active?", open_session=True,
                generation=opts)[-1].done  # fmt: skip
    assert first.route.pool == "sglang" and first.route.kind == pb.REQUEST_KIND_MULTI_TURN
    second = ask(vllm_router.stub, question="How many lanes are closed?", session_id=first.session_id, generation=opts)[
        -1
    ].done
    third = ask(vllm_router.stub, question="Are there workers?", session_id=first.session_id, generation=opts)[-1].done
    # The conversation so far is a prefix of each follow-up's prompt: vLLM serves it from cache.
    for d in (second, third):
        assert d.usage.cached_tokens >= 0.5 * d.usage.prompt_tokens, d.usage
    assert third.usage.prompt_tokens > second.usage.prompt_tokens > first.usage.prompt_tokens


@pytest.mark.slow
def test_bulk_items_go_to_their_pool(vllm_router: RunningRouter, sample_jpeg: bytes) -> None:
    def msgs() -> Iterator[pb.SubmitBatchRequest]:
        yield pb.SubmitBatchRequest(options=pb.BatchOptions(default_question="Roadwork?",
                                                            generation=pb.GenerationOptions(max_tokens=3)))  # fmt: skip
        for i in range(3):
            yield pb.SubmitBatchRequest(item=pb.BatchItem(image=sample_jpeg, item_id=str(i)))

    job = vllm_router.stub.SubmitBatch(msgs(), timeout=30).job
    results = [m.result for m in vllm_router.stub.ListBatchResults(
        pb.ListBatchResultsRequest(job_id=job.job_id, follow=True), timeout=120)]  # fmt: skip
    assert [r.index for r in results] == [0, 1, 2]
    for r in results:
        assert r.status == pb.ITEM_STATUS_SUCCEEDED and r.route.pool == "vllm" and r.route.kind == pb.REQUEST_KIND_BATCH
        assert r.usage.completion_tokens == 3
    # Same image three times: detection ran once, the other items were cache hits.
    assert sum(r.detection.cached for r in results) >= 2


def test_no_engine_degrades_to_detections_or_fails_in_strict_mode(
    tmp_path_factory: pytest.TempPathFactory, sample_jpeg: bytes
) -> None:
    env = {f"ROADWORK__POOLS__{p}__{k}": v for p in ("VLLM", "SGLANG", "LMDEPLOY")
           for k, v in (("ENGINE", "openai_http"), ("REPLICAS", json.dumps([_dead()])))}  # fmt: skip
    r = RunningRouter(make_config(tmp_path_factory.mktemp("dead"), **env)).wait_ready()
    try:
        events = ask(r.stub, image=sample_jpeg, question="Roadwork?")
        done = events[-1].done
        assert (
            done.degraded
            and done.finish_reason == pb.FINISH_REASON_DEGRADED
            and done.route.engine == pb.ENGINE_DETECTIONS_ONLY
        )
        assert done.answer.startswith("No language engine could answer") and "P(roadwork)" in done.answer
        assert [e.WhichOneof("event") for e in events] == ["detected", "progress", "progress", "delta", "done"]
        falls = [(e.progress.falling_back.from_pool, e.progress.falling_back.to_pool) for e in events[1:3]]
        assert falls == [("vllm", "sglang"), ("sglang", "lmdeploy")]  # each pool's one replica is down
        assert "no healthy replica" in events[1].progress.falling_back.reason
        with pytest.raises(grpc.RpcError) as exc:
            ask(r.stub, image=sample_jpeg, question="Roadwork?", strict=True)
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        assert "no engine pool could answer" in exc.value.details()  # type: ignore[attr-defined]
        assert "vllm: no healthy replica" in exc.value.details()  # type: ignore[attr-defined]
    finally:
        r.stop()


@pytest.fixture(scope="module")
def proxied_router(
    vllm_server: VLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningRouter, TCPProxy]]:
    """single_shot on vLLM through a TCP relay that timestamps when the router closes its connection."""
    proxy = TCPProxy(vllm_server.port)
    cfg = make_config(
        tmp_path_factory.mktemp("proxied"),
        ROADWORK__POOLS__VLLM__ENGINE="openai_http",
        ROADWORK__POOLS__VLLM__REPLICAS=json.dumps([proxy.url]),
        ROADWORK__GENERATION__MAX_TOKENS_CAP="16000",
        # The random model emits EOS after ~1,900 greedy tokens: long answers need ignore_eos.
        ROADWORK__POOLS__VLLM__EXTRA_BODY='{"ignore_eos": true}',
    )
    r = RunningRouter(cfg).wait_ready()
    yield r, proxy
    r.stop()
    proxy.close()


def _long_ask(image: bytes) -> pb.AskRequest:
    return pb.AskRequest(
        image=image, question="Describe everything.", generation=pb.GenerationOptions(max_tokens=10000)
    )


def _closed_after(proxy: TCPProxy, n_closed: int, since: float, timeout: float = 30.0) -> float:
    """Seconds from `since` until the router closed one more engine connection."""
    deadline = time.monotonic() + timeout
    while len(proxy.closed) <= n_closed and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(proxy.closed) > n_closed, "the router never closed the engine connection"
    return proxy.closed[n_closed] - since


@pytest.mark.slow
def test_client_cancel_closes_the_engine_stream_and_vllm_aborts(
    proxied_router: tuple[RunningRouter, TCPProxy], vllm_server: VLLMServer, sample_jpeg: bytes
) -> None:
    """Cancel after 5 deltas of a 10,000-token answer: the router closes its engine connection
    (seen at a TCP relay), and vLLM ends the request as aborted, long before 10,000 tokens.

    vLLM on 2 CPU cores sometimes delivers a stream in one burst at the end; then generation is
    over before the client sees 5 deltas: such trials measure nothing and are dropped (counted)."""
    router, proxy = proxied_router
    outcomes = []
    for _ in range(6):
        before = vllm_server.finished()
        n_closed = len(proxy.closed)
        call = router.stub.Ask(_long_ask(sample_jpeg), timeout=120)
        deltas = 0
        for event in call:
            deltas += event.WhichOneof("event") == "delta"
            if deltas == 5:
                cancelled_at = time.monotonic()
                call.cancel()
                break
        outcome = vllm_server.outcome(before)
        outcomes.append(outcome)
        if outcome == "aborted":
            _closed_after(proxy, n_closed, cancelled_at)  # the router closed its engine connection
        if outcomes.count("aborted") >= 2:
            break
    assert outcomes.count("aborted") >= 2, f"outcomes by trial: {outcomes}"


@pytest.mark.slow
def test_client_deadline_closes_the_engine_stream(
    proxied_router: tuple[RunningRouter, TCPProxy], vllm_server: VLLMServer, sample_jpeg: bytes
) -> None:
    """A 2 s deadline on a 10,000-token answer (over 10 s of work here): DEADLINE_EXCEEDED, and the
    router closes its engine connection (seen at the relay) instead of reading the answer to its
    end. (vLLM's own reaction to a closed stream is checked in the cancel test above; under this
    host's stalls its abort can lag by seconds, so it is not asserted here.)"""
    router, proxy = proxied_router
    router.stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=60)  # detection cached: the engine is reached
    n_closed = len(proxy.closed)
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as exc:
        list(router.stub.Ask(_long_ask(sample_jpeg), timeout=2.0))
    assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
    _closed_after(proxy, n_closed, start)
    vllm_server.settle(timeout=90)
