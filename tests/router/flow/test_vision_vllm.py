"""Images reaching a real vision-language model: the tiny Qwen2-VL (built at test time) on vLLM's CPU build.

The router fits each image to the pool's pixel budget, sends it as a data URL, reports what reached
the model (size, image tokens as vLLM counted them), replays it on follow-ups from the prefix
cache, and constrains verdicts to the JSON schema with guided decoding.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from PIL import Image

from router._proto.roadwork.v1 import router_pb2 as pb
from router.errors import ConfigError
from router.flow.vision import PixelBudget, fit, tokens_for
from tests.conftest import (
    STRUCTURED_COMPACT,
    RunningRouter,
    TCPProxy,
    VLLMServer,
    ask,
    make_config,
    require_vllm_python,
)

MIN_PIXELS, MAX_PIXELS = 128 * 28 * 28, 640 * 28 * 28  # 128 .. 640 image tokens
pytestmark = pytest.mark.slow


def jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A JPEG of random 8 x 8 blocks: distinct content per seed, bytes that grow with the size."""
    import numpy as np

    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 255, (max(1, height // 8), max(1, width // 8), 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(blocks).resize((width, height), Image.Resampling.NEAREST).save(out, "JPEG", quality=85)
    return out.getvalue()


@pytest.fixture(scope="module")
def vlm_server(tiny_vlm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    args = (*STRUCTURED_COMPACT, "--trust-request-mm-kwargs", "--limit-mm-per-prompt", '{"image": 1, "video": 0}')
    log = tmp_path_factory.mktemp("vlm") / "vllm.log"
    server = VLLMServer(require_vllm_python(), tiny_vlm, log, extra_args=args)
    try:
        yield server.wait()
    finally:
        server.stop()


def _vision_env(url: str, **extra: str) -> dict[str, str]:
    env = {
        "ROADWORK__POOLS__VLLM__ENGINE": "vllm",
        "ROADWORK__POOLS__VLLM__REPLICAS": json.dumps([url]),
        "ROADWORK__POOLS__VLLM__VISION": "true",
        "ROADWORK__POOLS__VLLM__MIN_PIXELS": str(MIN_PIXELS),
        "ROADWORK__POOLS__VLLM__MAX_PIXELS": str(MAX_PIXELS),
        "ROADWORK__POOLS__VLLM__METRICS_INTERVAL_S": "0",
        "ROADWORK__ROUTING__SINGLE_SHOT": '["vllm"]',
        "ROADWORK__ROUTING__MULTI_TURN": '["vllm"]',
        "ROADWORK__ROUTING__BATCH": '["vllm"]',
    }
    return env | extra


@pytest.fixture(scope="module")
def vlm_router(vlm_server: VLLMServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    """Every kind on the VLM, the pool's budget 128..640 tokens; a text-only pool on the same server."""
    env = _vision_env(
        vlm_server.url,
        ROADWORK__POOLS__TEXT__ENGINE="vllm",
        ROADWORK__POOLS__TEXT__REPLICAS=json.dumps([vlm_server.url]),
        ROADWORK__POOLS__TEXT__METRICS_INTERVAL_S="0",
    )
    r = RunningRouter(make_config(tmp_path_factory.mktemp("vlm-router"), **env)).wait_ready()
    yield r
    r.stop()


def _done(events: list[pb.AskResponse]) -> pb.AskDoneEvent:
    """The done event; on the way, the progress events before the first token end with the replica
    that started the answer (dispatched to the real vLLM server's URL)."""
    assert events[-1].WhichOneof("event") == "done"
    done = events[-1].done
    kinds = [e.WhichOneof("event") for e in events]
    first_delta = kinds.index("delta") if "delta" in kinds else len(kinds) - 1  # 2 tokens may stream no text
    assert kinds[0] == "detected" and set(kinds[1:first_delta]) == {"progress"}
    last = events[first_delta - 1].progress.dispatched
    moves = done.route.migrations
    first_replica = moves[0].from_replica if moves else done.route.replica  # a migrated answer started there
    assert last.replica == first_replica and last.replica.startswith("http") and last.pool
    return done


def test_the_image_reaches_the_model_and_its_tokens_follow_the_budget(vlm_router: RunningRouter) -> None:
    budget = PixelBudget(MIN_PIXELS, MAX_PIXELS)
    seen = []
    for w, h in [(160, 120), (448, 448), (640, 480), (3840, 2160)]:
        done = _done(
            ask(vlm_router.stub, image=jpeg(w, h), question="Is there roadwork?", generation={"max_tokens": 2})
        )
        img = done.image
        assert not done.degraded and done.route.engine == pb.ENGINE_VLLM
        assert (img.source_width, img.source_height) == (w, h)
        assert (img.width, img.height) == fit(w, h, budget)
        assert img.image_tokens_reported, "vLLM reports prompt_tokens_details.multimodal_tokens"
        assert img.image_tokens == tokens_for(img.width, img.height, 28)  # the router's sum is vLLM's count
        assert MIN_PIXELS // 784 <= img.image_tokens <= MAX_PIXELS // 784
        assert done.usage.prompt_tokens > img.image_tokens
        assert img.resized == (not MIN_PIXELS <= w * h <= MAX_PIXELS)
        seen.append((img.image_tokens, img.bytes, len(jpeg(w, h))))
    tokens = [t for t, _, _ in seen]
    assert tokens == sorted(tokens) and tokens[0] >= 128 and tokens[-1] <= 640  # grows, within the budget
    assert seen[0][0] < 140 * 1.05  # 160x120 enlarged only as far as the minimum needs (ceil to whole tokens)
    _, sent_4k, raw_4k = seen[-1]
    assert sent_4k < raw_4k / 3, f"a 4K frame went out as {sent_4k} bytes of {raw_4k}"


def test_bulk_items_carry_their_image_and_verdict(vlm_router: RunningRouter) -> None:
    options = pb.BatchOptions(default_question="Is there roadwork?", format=pb.ANSWER_FORMAT_VERDICT)
    options.generation.max_tokens = 200
    requests = [pb.SubmitBatchRequest(options=options)]
    requests += [pb.SubmitBatchRequest(item=pb.BatchItem(image=jpeg(640, 480, seed=i))) for i in range(2)]
    job = vlm_router.stub.SubmitBatch(iter(requests), timeout=60).job
    listing = pb.ListBatchResultsRequest(job_id=job.job_id, follow=True)
    results = [m.result for m in vlm_router.stub.ListBatchResults(listing, timeout=120)]
    assert [r.status for r in results] == [pb.ITEM_STATUS_SUCCEEDED] * 2
    for r in results:
        assert r.route.kind == pb.REQUEST_KIND_BATCH and r.route.engine == pb.ENGINE_VLLM
        assert r.image.image_tokens == tokens_for(*fit(640, 480, PixelBudget(MIN_PIXELS, MAX_PIXELS)), 28)
        assert r.HasField("verdict") and r.verdict.lanes_affected == json.loads(r.answer)["lanes_affected"]


@pytest.fixture(scope="module")
def text_pool_router(vlm_server: VLLMServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    env = {
        "ROADWORK__POOLS__VLLM__ENGINE": "vllm",
        "ROADWORK__POOLS__VLLM__REPLICAS": json.dumps([vlm_server.url]),
        "ROADWORK__POOLS__VLLM__METRICS_INTERVAL_S": "0",
        "ROADWORK__ROUTING__SINGLE_SHOT": '["vllm"]',
    }
    r = RunningRouter(make_config(tmp_path_factory.mktemp("text-pool"), **env)).wait_ready()
    yield r
    r.stop()


def test_the_text_path_still_works_without_vision(text_pool_router: RunningRouter) -> None:
    done = _done(
        ask(text_pool_router.stub, image=jpeg(640, 480), question="Is there roadwork?", generation={"max_tokens": 2})
    )
    assert not done.degraded and done.route.engine == pb.ENGINE_VLLM
    image_tokens = tokens_for(*fit(640, 480, PixelBudget(MIN_PIXELS, MAX_PIXELS)), 28)  # 391, had it been sent
    assert not done.HasField("image") and 20 < done.usage.prompt_tokens < image_tokens  # the summary alone


def test_a_follow_up_replays_the_image_from_the_prefix_cache(vlm_router: RunningRouter) -> None:
    image = jpeg(1280, 720, seed=3)
    first = ask(
        vlm_router.stub, image=image, question="Is there roadwork?", open_session=True, generation={"max_tokens": 4}
    )
    session = first[0].detected.session_id
    follow = _done(ask(vlm_router.stub, session_id=session, question="How many cones?", generation={"max_tokens": 4}))
    u = follow.usage
    share = u.cached_tokens / u.prompt_tokens
    print(f"\nfollow-up: {u.cached_tokens} of {u.prompt_tokens} prompt tokens cached ({share:.1%}), "
          f"{follow.image.image_tokens} image tokens")  # fmt: skip
    assert follow.image.image_tokens == _done(first).image.image_tokens
    assert share > 0.8, f"only {share:.1%} of the follow-up's prompt came from the prefix cache"


def test_a_verdict_is_guided_to_the_schema_and_parsed(vlm_router: RunningRouter) -> None:
    events = ask(
        vlm_router.stub,
        image=jpeg(640, 480),
        question="Is there roadwork?",
        format=pb.ANSWER_FORMAT_VERDICT,
        generation={"max_tokens": 200},
    )
    done = _done(events)
    text = "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta")
    assert text == done.answer and json.loads(text)["lanes_affected"] == done.verdict.lanes_affected
    assert done.HasField("verdict"), done.notices
    v, d = done.verdict, events[0].detected.detection
    assert v.agrees_with_detection == (v.roadwork == (d.verdict == pb.VERDICT_ROADWORK))
    model_p = 0.5 + (0.5 if v.roadwork else -0.5) * v.confidence
    assert v.merged_probability == pytest.approx(0.5 * d.roadwork_probability + 0.5 * model_p, abs=1e-3)
    assert v.merged_roadwork == (v.merged_probability > 0.5)


def test_a_verdict_that_does_not_parse_falls_back_to_text(vlm_router: RunningRouter) -> None:
    done = _done(
        ask(
            vlm_router.stub,
            image=jpeg(640, 480),
            question="Is there roadwork?",
            format=pb.ANSWER_FORMAT_VERDICT,
            generation={"max_tokens": 3},  # cut off mid-object
        )
    )
    assert not done.HasField("verdict") and done.answer and done.finish_reason == pb.FINISH_REASON_LENGTH
    assert any("not a valid verdict" in n for n in done.notices)


def test_an_image_over_the_context_is_invalid_argument(vlm_server: VLLMServer, tmp_path: Path) -> None:
    env = _vision_env(vlm_server.url, ROADWORK__POOLS__VLLM__MAX_PIXELS=str(40_000_000))
    r = RunningRouter(make_config(tmp_path, **env)).wait_ready()
    try:
        with pytest.raises(grpc.RpcError) as err:
            ask(r.stub, image=jpeg(6000, 4000), question="Is there roadwork?")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        message = err.value.details() or ""
        tokens = tokens_for(*fit(6000, 4000, PixelBudget(MIN_PIXELS, 40_000_000)), 28)
        assert f"{tokens} tokens" in message and "16384-token context" in message and "max_pixels" in message
    finally:
        r.stop()


def test_per_request_pixel_options_reach_vllm(vlm_server: VLLMServer, tmp_path: Path) -> None:
    env = _vision_env(vlm_server.url, ROADWORK__POOLS__VLLM__PER_REQUEST_PIXELS="true")
    r = RunningRouter(make_config(tmp_path, **env)).wait_ready()
    try:
        done = _done(ask(r.stub, image=jpeg(448, 448), question="Is there roadwork?", generation={"max_tokens": 2}))
        assert not done.degraded and done.image.image_tokens == 256
    finally:
        r.stop()


def test_vision_on_a_text_only_model_fails_at_start_up(vllm_server: VLLMServer, tmp_path: Path) -> None:
    r = RunningRouter(make_config(tmp_path, **_vision_env(vllm_server.url)))
    try:
        with pytest.raises(ConfigError, match=r"pools\.vllm.*not a multimodal model"):
            r.wait_ready()
    finally:
        r.stop()


# -- the bundled demo VLM (engines/models/roadwork-vlm) on real vLLM, as the quick start's engine ------------------


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    """vLLM (CPU) serving the demo weights in float32 (as the embedded engine runs them)."""
    from engines.embedded import DEMO_MODEL, resolve_model

    args = (*STRUCTURED_COMPACT, "--max-model-len", "4096", "--dtype", "float32")
    log = tmp_path_factory.mktemp("demo-vlm") / "vllm.log"
    server = VLLMServer(require_vllm_python(), Path(resolve_model(DEMO_MODEL)), log, extra_args=args).wait()
    try:
        yield server
    finally:
        server.stop()


DEMO_PIXELS = {"ROADWORK__POOLS__VLLM__MIN_PIXELS": "50176", "ROADWORK__POOLS__VLLM__MAX_PIXELS": "150528"}


@pytest.fixture(scope="module")
def demo_router(demo_server: VLLMServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    """Every kind on the demo VLM."""
    env = _vision_env(demo_server.url, **DEMO_PIXELS)
    r = RunningRouter(make_config(tmp_path_factory.mktemp("demo-router"), **env))
    try:
        yield r.wait_ready()
    finally:
        r.stop()


def test_vllm_serves_the_demo_model_with_the_sample_picture(demo_router: RunningRouter, sample_jpeg: bytes) -> None:
    first = ask(demo_router.stub, image=sample_jpeg, question="Is there roadwork here?", open_session=True)
    done = _done(first)
    assert done.route.engine == pb.ENGINE_VLLM and not done.degraded
    assert (done.image.width, done.image.height, done.image.image_tokens) == (448, 336, 192)
    assert done.image.image_tokens_reported and done.image.resized
    assert done.answer.startswith("Yes, there is roadwork"), done.answer
    session = first[0].detected.session_id
    follow = _done(ask(demo_router.stub, session_id=session, question="How many lanes are closed?"))
    assert follow.answer == "1 lane is closed."  # the sample: one lane closed by the cones beside the truck
    verdict = _done(
        ask(demo_router.stub, image=sample_jpeg, question="Is there roadwork here?", format=pb.ANSWER_FORMAT_VERDICT)
    )
    assert verdict.HasField("verdict") and verdict.verdict.roadwork and verdict.verdict.agrees_with_detection


MIGRATED = 200  # tokens, EOS ignored: the trained answer, then what the model says past it


def test_a_migrated_answer_of_the_demo_model_equals_the_uninterrupted_one(
    demo_server: VLLMServer, sample_jpeg: bytes, tmp_path: Path
) -> None:
    """Replica a (a relay to the server) dies after 3 deltas; b continues: greedy, the same text as an
    answer that was never interrupted. The demo model's text re-tokenises to the tokens it generated,
    which the random test model's does not (test_faults.py)."""
    a = TCPProxy(demo_server.port)
    env = _vision_env(demo_server.url, **DEMO_PIXELS) | {
        "ROADWORK__POOLS__VLLM__REPLICAS": json.dumps([a.url, demo_server.url]),
        "ROADWORK__POOLS__VLLM__POLICY": "round_robin",
        "ROADWORK__POOLS__VLLM__EXTRA_BODY": '{"ignore_eos": true}',
    }
    r = RunningRouter(make_config(tmp_path, **env)).wait_ready()
    try:
        question = pb.AskRequest(
            image=sample_jpeg, question="Is there roadwork here?", strict=True,
            generation=pb.GenerationOptions(max_tokens=MIGRATED, temperature=0.0),
        )  # fmt: skip
        whole = _done(list(r.stub.Ask(question, timeout=120)))
        if whole.route.replica == a.url:  # round robin: the next one goes to b, the one after to a
            ask(r.stub, image=sample_jpeg, question="Cones?", generation=pb.GenerationOptions(max_tokens=2))
        call = r.stub.Ask(question, timeout=120)
        text, deltas, seen = "", 0, []
        for event in call:
            seen.append(event)
            if event.WhichOneof("event") == "delta":
                text, deltas = text + event.delta.text, deltas + 1
                if deltas == 3:
                    a.cut()
                    break
        events = list(call)
        done = _done(seen + events)  # the whole stream: the progress checks start at its detected event
        text += "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta")
        (move,) = done.route.migrations
        assert (move.from_replica, move.to_replica) == (a.url, demo_server.url) and move.tokens_kept >= 3
        assert text == done.answer and done.usage.completion_tokens == MIGRATED
        assert whole.answer.startswith("Yes, there is roadwork"), whole.answer
        assert done.answer == whole.answer, (move, done.answer, whole.answer)
    finally:
        r.stop()
        a.close()
