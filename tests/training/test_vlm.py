"""The demo VLM's data, training and evaluation: facts match the renderer, answers parse back, a tiny CPU
training run saves a model that loads and generates, and evaluation scores answers and writes its report."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detectors.base import Detection
from engines.tiny_vlm import build_vlm
from router.flow.verdict import INSTRUCTION, parse_verdict
from training import evaluate_vlm, vlm
from training.synth import CLASSES, render_scene, render_scene_facts
from training.vlm_data import (
    EVAL_STREAM,
    KINDS,
    QUESTION_STREAM,
    TRAIN_STREAM,
    Question,
    SceneFacts,
    answer,
    ask,
    conversation,
    corpus,
    parse_count,
    parse_object_counts,
    parse_objects,
    parse_yes_no,
    processor_budget,
    render_images,
    try_parse_verdict,
)

SIZE = (320, 240)


def _facts(rng: np.random.Generator) -> SceneFacts:
    counts = tuple(int(n) for n in rng.integers(0, 4, len(CLASSES)) * (rng.random(len(CLASSES)) < 0.4))
    if rng.random() < 0.3:
        counts = (0,) * len(CLASSES)
    roadwork = any(counts)
    lanes = int(rng.integers(0, 4)) if roadwork else 0
    return SceneFacts(counts, roadwork, lanes, counts[CLASSES.index("worker")] + counts[-1] > 0)


def _detection(width: int, height: int) -> Detection:
    return Detection(probability=0.9, votes=(), image_sha256="", width=width, height=height)


def test_render_scene_facts_is_render_scene_plus_closures() -> None:
    closed = 0
    for seed in range(12):
        img, labels, rw = render_scene(np.random.default_rng(seed), SIZE)
        img2, labels2, rw2, closures = render_scene_facts(np.random.default_rng(seed), SIZE)
        assert img.tobytes() == img2.tobytes() and labels == labels2 and rw == rw2
        assert rw or not closures
        closed += bool(closures)
    assert closed > 0


def test_facts_agree_with_the_labels() -> None:
    seen_roadwork = seen_lane = seen_active = False
    for seed in range(16):
        _img, labels, rw, closures = render_scene_facts(np.random.default_rng([5, seed]), SIZE)
        f = SceneFacts.from_scene(labels, rw, closures)
        per = Counter(c for c, *_box in labels)
        assert f.counts == tuple(per.get(i, 0) for i in range(len(CLASSES)))
        assert f.roadwork is rw and f.lanes_closed == len({lane for lane, _a, _b in closures})
        assert f.active == (per[CLASSES.index("worker")] + per[CLASSES.index("work_vehicle")] > 0)
        if not rw:
            assert f.counts == (0,) * len(CLASSES) and f.lanes_closed == 0 and not f.active
        seen_roadwork |= rw
        seen_lane |= f.lanes_closed > 0
        seen_active |= f.active
    assert seen_roadwork and seen_lane and seen_active


def test_every_answer_parses_back_to_its_facts() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        f = _facts(rng)
        for kind in KINDS:
            targets = CLASSES if kind == "count" else ("",)
            for target in targets:
                q = ask(kind, rng, target)
                a = answer(q, f)
                if kind == "roadwork":
                    assert parse_yes_no(a) is f.roadwork and parse_object_counts(a) == f.present
                elif kind == "objects":
                    assert parse_objects(a) == frozenset(f.present)
                elif kind == "count":
                    assert parse_count(a) == f.count(target), (q.text, a)
                elif kind in ("lane", "lanes"):
                    assert parse_count(a) == f.lanes_closed
                    if kind == "lane":
                        assert parse_yes_no(a) is (f.lanes_closed > 0)
                elif kind == "active":
                    crew = {k: v for k, v in f.present.items() if k in ("worker", "work_vehicle")}
                    assert parse_yes_no(a) is f.active and parse_object_counts(a) == crew
                else:
                    assert q.text.endswith("\n" + INSTRUCTION)
                    assert parse_verdict(a) == f.verdict() and f.verdict().confidence == 0.9
        assert parse_yes_no(answer(Question("roadwork", "", "Is there roadwork?"), f, augmented=True)) is f.roadwork


def test_parsers_reject_what_is_not_an_answer() -> None:
    assert parse_yes_no("Maybe.") is None
    assert parse_count("No, there is roadwork.") is None  # a "no" that is not "no cones"
    assert parse_count("There are no cones.") == 0 and parse_count("None.") == 0
    assert parse_objects("None.") == frozenset()
    assert parse_object_counts("3 drums and an arrow board") == {"drum": 3, "arrow_board": 1}
    assert try_parse_verdict('{"roadwork": true}') is None
    with pytest.raises(ValueError):
        answer(Question("count", "cone", "How many cones?"), _facts(np.random.default_rng(0)), augmented=True)


def test_conversations_replay_history_without_repeating_a_question() -> None:
    rng = np.random.default_rng(11)
    lengths: Counter[int] = Counter()
    for _ in range(300):
        f = _facts(rng)
        turns = conversation(rng, f, augmented=False)
        keys = [(q.kind, q.target) for q, _a in turns]
        assert len(set(keys)) == len(keys)
        assert all(a == answer(q, f) for q, a in turns)
        lengths[len(turns)] += 1
    assert set(lengths) == {1, 2, 3}
    assert all(q.kind == "roadwork" for q, _a in conversation(rng, _facts(rng), augmented=True))


def test_answer_labels_cover_exactly_the_answers(tmp_path: Path) -> None:
    images = render_images(TRAIN_STREAM, 0, 3, 0.5, 1, SIZE)
    dets = [_detection(im.width, im.height) for im in images]
    facts = [im.facts for im in images]
    build = build_vlm(tmp_path / "m", vlm.SMOKE, corpus=corpus(facts, ["Detection: roadwork likely"], "You answer."))
    processor = vlm.load_processor(build)
    data = vlm.Conversations(images, dets, "You answer questions.", seed=1, budget=processor_budget(processor))
    picture, _messages = data[0]
    assert picture.size == (224, 168)  # 640x480 fitted to the smoke processor's 224x168 as the router fits it
    for share, has in ((0.0, False), (1.0, True)):
        blind = vlm.Conversations(
            images, dets, "You answer.", seed=1, budget=processor_budget(processor), summary_share=share
        )
        system = blind[0][1][0]["content"][0]["text"]
        assert ("Detection:" in system) == has and system.startswith("You answer.")
    items = [data[k] for k in range(8)]
    batch = vlm.Collate(processor)(items)
    tok = processor.tokenizer
    for k, (ids, labels) in enumerate(zip(batch["input_ids"].tolist(), batch["labels"].tolist(), strict=True)):
        im = images[k % len(images)]
        turns = conversation(np.random.default_rng([QUESTION_STREAM, 1, k]), im.facts, im.augmented)
        want = "".join(a + "<|im_end|>" for _q, a in turns)
        assert tok.decode([t for t, lab in zip(ids, labels, strict=True) if lab != -100]) == want
    assert batch["pixel_values"].shape[0] > 0 and "image_grid_thw" in batch


def test_size_grouped_batches_keep_one_image_size_and_cover_every_image() -> None:
    sizes = [(640, 480)] * 10 + [(224, 224)] * 5
    it = iter(vlm.SizeGroupedBatches(sizes, batch=4, seed=0))
    first_pass = [next(it) for _ in range(3)]  # 10 // 4 + 5 // 4 batches per pass
    for b in first_pass:
        assert len({sizes[i % 15] for i in b}) == 1
    assert all(i < 15 for b in first_pass for i in b)
    assert all(i >= 15 for i in next(it))  # the next pass draws new item ids (new questions)


def test_loader_plan_keeps_batches_in_flight_within_shared_memory() -> None:
    assert vlm.loader_plan(14, 100, None) == (14, 2)
    assert vlm.loader_plan(14, 100, 10_000) == (14, 2)
    workers, prefetch = vlm.loader_plan(14, 100, 2_000)
    assert workers * prefetch * 100 <= 1_000 and workers == 10 and prefetch == 1
    assert vlm.loader_plan(14, 100, 100)[0] == 0  # not even one batch fits: collate in the training process


def test_demo_shape_fits_the_serving_constraints(tmp_path: Path) -> None:
    from transformers import Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    s = vlm.DEMO
    assert s.head_dim in (32, 64, 80, 96, 112, 128) and sum(s.mrope_section) == s.head_dim // 2
    assert smart_resize(480, 640, min_pixels=s.min_pixels, max_pixels=s.max_pixels) == (336, 448)  # 16 x 12 tokens
    assert smart_resize(224, 224, min_pixels=s.min_pixels, max_pixels=s.max_pixels) == (224, 224)
    build = build_vlm(tmp_path / "demo", s, corpus=["Is there roadwork here? Yes, there is roadwork."] * 50)
    model = Qwen2VLForConditionalGeneration.from_pretrained(build)
    total, vision = vlm.parameters(model)
    assert 5_000_000 < total < 7_500_000 and vision > 1_000_000
    assert vlm.save_model(model, build, tmp_path / "saved") <= 15_000_000


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vlm") / "model"
    args = ["--scenes", "6", "--max-steps", "3", "--shape", "smoke", "--device", "cpu", "--batch", "4"]
    vlm.main(
        [str(out), *args, "--workers", "1", "--jobs", "1", "--width", "320", "--height", "240", "--log-every", "1"]
    )
    return out


def test_training_saves_a_model_that_loads_and_generates(trained: Path) -> None:
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    report = json.loads((trained / "train-report.json").read_text())
    assert report["train"]["steps"] == 3 and len(report["train"]["curve"]) == 3
    assert report["images"]["clean"] == 6 and report["images"]["augmented"] >= 1
    assert report["model_bytes"] == (trained / "model.safetensors").stat().st_size
    card = (trained / "MODEL_CARD.md").read_text()
    assert "only synthetic scenes" in card and "fixed at 0.9" in card
    # SGLang 0.5.14 reads vision_config.in_chans (transformers 5 writes only in_channels)
    assert json.loads((trained / "config.json").read_text())["vision_config"]["in_chans"] == 3
    model: Any = Qwen2VLForConditionalGeneration.from_pretrained(trained)
    assert next(model.parameters()).dtype == torch.bfloat16
    model = model.float().eval()
    processor = vlm.load_processor(trained)
    images = render_images(EVAL_STREAM, 1, 1, 0.0, 1, SIZE)
    item = evaluate_vlm.Item(0, "clean", ((ask("roadwork", np.random.default_rng(0)), ""),))
    prompts = evaluate_vlm.Prompts([[0]], [item], images, [_detection(320, 240)], "You answer.", processor)
    enc = prompts[0]
    out = model.generate(**enc, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > enc["input_ids"].shape[1]  # it generated something


def test_score_rewards_right_answers_and_not_wrong_ones() -> None:
    images = render_images(EVAL_STREAM, 7, 6, 1.0, 1, SIZE)
    items = evaluate_vlm.make_items(images, 7)
    facts = [im.facts for im in images]
    right = evaluate_vlm.score(items, [it.turns[-1][1] for it in items], facts)
    assert right["goals"]["yes_no_clean"]["met"] and right["goals"]["count_within1_clean"]["met"]
    assert right["yes_no_clean"]["overall"]["accuracy"] == 1.0 and right["roadwork_augmented"]["accuracy"] == 1.0
    assert right["counts_clean"]["overall"]["exact"] == 1.0 and right["objects_f1_clean"]["f1"] == 1.0
    assert right["verdict_clean"]["parse_rate"] == 1.0 and right["verdict_clean"]["objects_exact"] == 1.0
    flipped = ["No." if parse_yes_no(it.turns[-1][1]) else "Yes." for it in items]
    wrong = evaluate_vlm.score(items, flipped, facts)
    assert wrong["yes_no_clean"]["overall"]["accuracy"] == 0.0
    junk = evaluate_vlm.score(items, ["I cannot tell."] * len(items), facts)
    assert junk["counts_clean"]["overall"]["within1"] == 0.0 and junk["verdict_clean"]["parse_rate"] == 0.0


def test_evaluation_runs_and_writes_its_report(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    evaluate_vlm.main([str(trained), "--n", "2", "--device", "cpu", "--jobs", "1", "--workers", "1", "--out", str(out)])
    report = json.loads(out.read_text())
    per_scene = 6 + len(CLASSES) + 1  # six kinds, a count per class, a follow-up
    assert report["setup"]["questions"] == 2 * per_scene + 2
    assert report["yes_no_clean"]["overall"]["n"] == 6 and report["roadwork_augmented"]["n"] == 2
    assert report["counts_clean"]["overall"]["n"] == 2 * len(CLASSES) and report["verdict_clean"]["n"] == 2
    assert all(0.0 <= g["value"] <= 1.0 for g in report["goals"].values())
    assert set(report["conditions"]) == {"served", "image_only"}  # with the detection summary, and without it
    for scored in report["conditions"].values():
        assert scored["examples"] and all("answer" in e for e in scored["examples"])
        assert scored["yes_no_clean"]["overall"]["n"] == 6


@pytest.mark.parametrize("model", ["build", "shipped"])
def test_models_carry_the_keys_every_engine_reads(model: str, tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "engines" / "models" / "roadwork-vlm"
    path = build_vlm(tmp_path / "m") if model == "build" else shipped
    vision = json.loads((path / "config.json").read_text())["vision_config"]
    assert vision["in_chans"] == vision["in_channels"] == 3
