"""Evaluate the demo VLM on held-out synthetic scenes, prompted exactly as the router prompts engines.

python -m training.evaluate_vlm MODEL --n 300 --seed 4242 --device cuda --out report.json

Scenes come from the evaluation stream (training draws from another, whatever the seeds), each scored clean
and StreetVision-augmented; the real detection ensemble's summary is in the system prompt. Answers are
generated greedily in batches and parsed back: yes/no accuracy (roadwork, lane closed, active), counts exact
and within +-1 (per class and overall), object-set F1, and the verdict JSON's parse rate and field accuracies.
Goals on clean scenes: yes/no >= 0.9, counts within +-1 >= 0.8.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detectors.base import Detection, VoteStatus
from training.vlm_data import (
    COUNT_CLASSES,
    EVAL_STREAM,
    QUESTION_STREAM,
    Question,
    SceneFacts,
    SceneImage,
    answer,
    ask,
    chat,
    detect,
    parse_count,
    parse_object_counts,
    parse_objects,
    parse_yes_no,
    processor_budget,
    render_images,
    system_prompt,
    try_parse_verdict,
)

GOALS = {"yes_no_clean": 0.9, "count_within1_clean": 0.8}
SHORT_TOKENS = 48
VERDICT_TOKENS = 160


@dataclass(frozen=True)
class Item:
    """One evaluation question: the image it is about, the conversation so far, and what is scored."""

    image: int  # index into the evaluation images
    group: str  # "clean", "augmented" or "followup"
    turns: tuple[tuple[Question, str], ...]  # earlier turns with their answers, then (question, expected)

    @property
    def question(self) -> Question:
        """The question being scored (the last turn's)."""
        return self.turns[-1][0]


def make_items(images: Sequence[SceneImage], seed: int) -> list[Item]:
    """Every question kind (counts: every class) on clean images, roadwork on augmented ones, plus a follow-up."""
    rng = np.random.default_rng([QUESTION_STREAM, EVAL_STREAM, seed])
    items: list[Item] = []
    for i, im in enumerate(images):
        f, aug = im.facts, im.augmented
        if aug:
            q = ask("roadwork", rng)
            items.append(Item(i, "augmented", ((q, answer(q, f, True)),)))
            continue
        asked = [ask(k, rng) for k in ("roadwork", "objects", "lane", "lanes", "active", "verdict")]
        asked += [ask("count", rng, c) for c in COUNT_CLASSES]
        items += [Item(i, "clean", ((q, answer(q, f)),)) for q in asked]
        first, then = ask("roadwork", rng), ask("count", rng, str(rng.choice(["cone", "drum", "barricade", "worker"])))
        items.append(Item(i, "followup", ((first, answer(first, f)), (then, answer(then, f)))))
    return items


# ----------------------------------------------------------------------------------------------------- scoring
def _acc(hits: Sequence[bool]) -> dict[str, Any]:
    return {"accuracy": round(sum(hits) / len(hits), 4) if hits else None, "n": len(hits)}


def _counts(pairs: Sequence[tuple[int | None, int]]) -> dict[str, Any]:
    exact = [p == t for p, t in pairs]
    near = [p is not None and abs(p - t) <= 1 for p, t in pairs]
    n = len(pairs)
    return {
        "exact": round(sum(exact) / n, 4) if n else None,
        "within1": round(sum(near) / n, 4) if n else None,
        "n": n,
    }


def f1(pred: frozenset[str], true: frozenset[str]) -> float:
    """Set F1 (1.0 when both sets are empty)."""
    if not pred and not true:
        return 1.0
    tp = len(pred & true)
    return 2 * tp / (len(pred) + len(true))


def _mean(xs: Sequence[float]) -> float | None:
    return round(sum(xs) / len(xs), 4) if xs else None


def _verdict_scores(pairs: Sequence[tuple[str, SceneFacts]]) -> dict[str, Any]:
    parsed = [(try_parse_verdict(a), f) for a, f in pairs]
    ok = [(v, f) for v, f in parsed if v is not None]
    near: list[bool] = []
    for v, f in ok:
        got = dict(v.objects)
        near += [abs(got.get(c, 0) - f.count(c)) <= 1 for c in COUNT_CLASSES if got.get(c, 0) or f.count(c)]
    return {
        "parse_rate": _acc([v is not None for v, _f in parsed])["accuracy"],
        "n": len(pairs),
        "roadwork": _acc([v.roadwork == f.roadwork for v, f in ok])["accuracy"],
        "active": _acc([v.active == f.active for v, f in ok])["accuracy"],
        "lanes_exact": _acc([v.lanes_affected == f.lanes_closed for v, f in ok])["accuracy"],
        "objects_exact": _acc([dict(v.objects) == f.present for v, f in ok])["accuracy"],
        "objects_f1": _mean([f1(frozenset(dict(v.objects)), frozenset(f.present)) for v, f in ok]),
        "object_counts_within1": _acc(near)["accuracy"],
    }


Rows = dict[tuple[str, str], list[tuple[str, SceneFacts, str]]]
YES_NO: tuple[tuple[str, str, Callable[[SceneFacts], bool]], ...] = (
    ("roadwork", "roadwork", lambda f: f.roadwork),
    ("lane_closed", "lane", lambda f: f.lanes_closed > 0),
    ("active", "active", lambda f: f.active),
)


def _rows(items: Sequence[Item], answers: Sequence[str], facts: Sequence[SceneFacts]) -> Rows:
    """(group, kind) -> [(answer, the scene's facts, count target)]."""
    rows: Rows = {}
    for it, a in zip(items, answers, strict=True):
        rows.setdefault((it.group, it.question.kind), []).append((a, facts[it.image], it.question.target))
    return rows


def _yes_no(rows: Rows) -> dict[str, Any]:
    per = {
        name: [parse_yes_no(a) == truth(f) for a, f, _t in rows.get(("clean", kind), [])]
        for name, kind, truth in YES_NO
    }
    out = {name: _acc(hits) for name, hits in per.items()}
    out["overall"] = _acc([h for hits in per.values() for h in hits])
    return out


def _count_scores(rows: Rows) -> dict[str, Any]:
    pairs = [(parse_count(a), f.count(t), t) for a, f, t in rows.get(("clean", "count"), [])]
    out = {c: _counts([(p, n) for p, n, t in pairs if t == c]) for c in COUNT_CLASSES}
    out["overall"] = _counts([(p, n) for p, n, _t in pairs])
    return out


def _goal(name: str, value: float | None) -> dict[str, Any]:
    return {"goal": GOALS[name], "value": value, "met": value is not None and value >= GOALS[name]}


def score(items: Sequence[Item], answers: Sequence[str], facts: Sequence[SceneFacts]) -> dict[str, Any]:
    """Per question type metrics of `answers` (one per item) against the scenes' facts."""
    rows = _rows(items, answers, facts)
    listed = [
        f1(frozenset(parse_object_counts(a)), frozenset(f.present))
        for a, f, _t in rows.get(("clean", "roadwork"), [])
        if f.roadwork and parse_yes_no(a)
    ]
    objects = [f1(parse_objects(a), frozenset(f.present)) for a, f, _t in rows.get(("clean", "objects"), [])]
    follow = rows.get(("followup", "count"), [])
    report: dict[str, Any] = {
        "yes_no_clean": _yes_no(rows),
        "roadwork_augmented": _acc(
            [parse_yes_no(a) == f.roadwork for a, f, _t in rows.get(("augmented", "roadwork"), [])]
        ),
        "counts_clean": _count_scores(rows),
        "lanes_count_clean": _counts(
            [(parse_count(a), f.lanes_closed) for a, f, _t in rows.get(("clean", "lanes"), [])]
        ),
        "objects_f1_clean": {"f1": _mean(objects), "n": len(objects)},
        "roadwork_answer_objects_f1": {"f1": _mean(listed), "n": len(listed)},
        "verdict_clean": _verdict_scores([(a, f) for a, f, _t in rows.get(("clean", "verdict"), [])]),
        "followup_count": _counts([(parse_count(a), f.count(t)) for a, f, t in follow]),
    }
    report["goals"] = {
        "yes_no_clean": _goal("yes_no_clean", report["yes_no_clean"]["overall"]["accuracy"]),
        "count_within1_clean": _goal("count_within1_clean", report["counts_clean"]["overall"]["within1"]),
    }
    return report


def detector_count(d: Detection, name: str) -> int:
    """A baseline count from the detections alone: the members' boxes of a class, averaged and rounded."""
    votes = [sum(b.class_name == name for b in v.boxes) for v in d.votes if v.status is VoteStatus.OK]
    return round(sum(votes) / len(votes)) if votes else 0


# -------------------------------------------------------------------------------------------------- generation
def load_model(path: Path, device: str) -> tuple[Any, Any]:
    """The saved model in float32, in eval mode, and its processor."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    from training.vlm import load_processor

    dtype = torch.float32  # as the embedded engine runs it (bf16 activations blur the image features)
    model: Any = Qwen2VLForConditionalGeneration.from_pretrained(path, dtype=dtype)
    return model.to(device).eval(), load_processor(path)


@dataclass
class Prompts:
    """Batch b: its items' prompts run through the processor (left-padded), ready for generate()."""

    batches: list[list[int]]
    items: Sequence[Item]
    images: Sequence[SceneImage]
    detections: Sequence[Detection]
    prompt: str
    processor: Any
    summary: bool = True  # the detection summary in the system prompt (False: the image alone)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, b: int) -> dict[str, Any]:
        pictures, texts = [], []
        for k in self.batches[b]:
            it = self.items[k]
            im = self.images[it.image]
            picture, part = im.sent(processor_budget(self.processor))
            messages = chat(self.prompt, self.detections[it.image], part, it.turns, final=False, summary=self.summary)
            texts.append(self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
            pictures.append(picture)
        self.processor.tokenizer.padding_side = "left"
        enc = dict(self.processor(text=texts, images=pictures, padding=True, return_tensors="pt"))
        return enc


def batches_of(items: Sequence[Item], images: Sequence[SceneImage], size: int) -> list[list[int]]:
    """Item indices in batches of one image kind (clean or augmented) and one answer length (verdict or not)."""
    groups: dict[tuple[bool, bool], list[int]] = {}
    for k, it in enumerate(items):
        groups.setdefault((images[it.image].augmented, it.question.kind == "verdict"), []).append(k)
    return [members[s : s + size] for _key, members in sorted(groups.items()) for s in range(0, len(members), size)]


def answer_all(model: Any, processor: Any, prompts: Prompts, args: argparse.Namespace) -> list[str]:
    """Greedy answers to every item; the processor runs in DataLoader workers, generate() here."""
    import torch
    from torch.utils.data import DataLoader

    from training.vlm import loader_plan, one_thread, shm_free

    answers = [""] * len(prompts.items)
    batch_bytes = args.batch * 768 * 1176 * 4  # 768 patches: a 448x336 image
    workers, prefetch = loader_plan(args.workers, batch_bytes, shm_free())
    extra: dict[str, Any] = {"prefetch_factor": prefetch} if workers else {}
    loader: Any = DataLoader(prompts, batch_size=None, num_workers=workers, worker_init_fn=one_thread, **extra)  # type: ignore[arg-type]
    done = 0
    for ks, enc in zip(prompts.batches, loader, strict=True):
        verdict = prompts.items[ks[0]].question.kind == "verdict"
        enc = {k: v.to(args.device) for k, v in enc.items()}
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=VERDICT_TOKENS if verdict else SHORT_TOKENS, do_sample=False)
        texts = processor.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        for k, text in zip(ks, texts, strict=True):
            answers[k] = str(text).strip()
        done += len(ks)
        print(f"  generated {done}/{len(answers)}", flush=True)
    return answers


# ------------------------------------------------------------------------------------------------------- report
def markdown(report: dict[str, Any]) -> str:
    """The headline metrics as a markdown table."""
    yn = report["yes_no_clean"]
    rows = [("roadwork (clean)", yn["roadwork"]), ("lane closed (clean)", yn["lane_closed"])]
    rows += [("work active (clean)", yn["active"]), ("yes/no overall (clean)", yn["overall"])]
    rows += [("roadwork (StreetVision-augmented)", report["roadwork_augmented"])]
    lines = ["| question | metric | value | n |", "| --- | --- | --- | --- |"]
    lines += [f"| {q} | yes/no accuracy | {_fmt(v['accuracy'])} | {v['n']} |" for q, v in rows]
    counted = [(f"count {c}", v) for c, v in report["counts_clean"].items()]
    counted += [("lanes closed", report["lanes_count_clean"]), ("count as a follow-up", report["followup_count"])]
    for name, v in counted:
        lines.append(f"| {name} | exact / within +-1 | {_fmt(v['exact'])} / {_fmt(v['within1'])} | {v['n']} |")
    o = report["objects_f1_clean"]
    lines.append(f"| which objects | set F1 | {_fmt(o['f1'])} | {o['n']} |")
    vd = report["verdict_clean"]
    fields = ", ".join(f"{k} {_fmt(vd[k])}" for k in ("roadwork", "active", "lanes_exact", "objects_f1"))
    lines.append(f"| verdict JSON | parse rate ({fields}) | {_fmt(vd['parse_rate'])} | {vd['n']} |")
    if "detector_roadwork" in report:  # the detections alone, for comparison
        rw, dc = report["detector_roadwork"], report["detector_counts_clean"]
        lines.append(f"| detections alone: roadwork clean / augmented | accuracy | {_fmt(rw['clean']['accuracy'])}"
                     f" / {_fmt(rw['augmented']['accuracy'])} | {rw['clean']['n']} |")  # fmt: skip
        lines.append(f"| detections alone: counts | exact / within +-1 | {_fmt(dc['exact'])} / {_fmt(dc['within1'])}"
                     f" | {dc['n']} |")  # fmt: skip
    return "\n".join(lines)


def baselines_of(report: dict[str, Any]) -> dict[str, Any]:
    """The detections-alone figures of a report."""
    return {k: report[k] for k in ("detector_roadwork", "detector_counts_clean") if k in report}


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def baselines(detections: Sequence[Detection], images: Sequence[SceneImage]) -> dict[str, Any]:
    """What the detections alone get right: roadwork (clean and augmented) and counts (clean)."""
    pairs = list(zip(detections, images, strict=True))
    rw = {g: _acc([d.roadwork == im.facts.roadwork for d, im in pairs if im.augmented == (g == "augmented")])
          for g in ("clean", "augmented")}  # fmt: skip
    counts = [(detector_count(d, c), im.facts.count(c)) for d, im in pairs if not im.augmented for c in COUNT_CLASSES]
    return {"detector_roadwork": rw, "detector_counts_clean": _counts(counts)}


def examples(items: Sequence[Item], answers: Sequence[str], n: int) -> list[dict[str, str]]:
    """About n answers spread over the run, with the question and the expected answer."""
    step = max(1, len(items) // max(1, n))
    return [
        {"group": it.group, "question": it.question.text.split("\n")[0], "expected": it.turns[-1][1], "answer": a}
        for it, a in list(zip(items, answers, strict=True))[::step][:n]
    ]


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Render, detect, generate, score; returns the report."""
    t0 = time.perf_counter()
    images = render_images(EVAL_STREAM, args.seed, args.n, 1.0, args.jobs)
    detections = detect(images, args.config, concurrency=64 if args.device.startswith("cuda") else 8)
    data_s = time.perf_counter() - t0
    print(f"rendered and detected {len(images)} images in {data_s:.1f} s", flush=True)
    items = make_items(images, args.seed)
    model, processor = load_model(args.model, args.device)
    batches = batches_of(items, images, args.batch)
    report: dict[str, Any] = {"conditions": {}}
    for condition in args.conditions.split(","):
        summary = {"served": True, "image_only": False}[condition]
        prompt = system_prompt(args.config)
        prompts = Prompts(batches, items, images, detections, prompt, processor, summary=summary)
        t1 = time.perf_counter()
        answers = answer_all(model, processor, prompts, args)
        scored = score(items, answers, [im.facts for im in images])
        scored["generate_s"] = round(time.perf_counter() - t1, 1)
        scored["examples"] = examples(items, answers, args.examples)
        report["conditions"][condition] = scored
    first = report["conditions"][args.conditions.split(",")[0]]
    report |= {k: v for k, v in first.items() if k != "examples"}  # the headline: the first condition
    report |= baselines(detections, images)
    report["setup"] = {
        "command": "python -m training.evaluate_vlm " + " ".join(sys.argv[1:]),
        "model": str(args.model),
        "scenes": args.n,
        "seed": args.seed,
        "questions": len(items),
        "conditions": args.conditions,
        "data_s": round(data_s, 1),
    }
    return report


def main(argv: Sequence[str] | None = None) -> None:
    """Evaluate, print the table, write the JSON."""
    p = argparse.ArgumentParser(prog="python -m training.evaluate_vlm", description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--n", type=int, default=300, help="held-out scenes (each clean and augmented)")
    p.add_argument("--seed", type=int, default=4242)
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--jobs", type=int, default=16, help="processes drawing the scenes")
    p.add_argument("--workers", type=int, default=14, help="DataLoader workers running the processor")
    p.add_argument("--config", type=Path, default=None, help="router config for the detectors and system prompt")
    p.add_argument("--examples", type=int, default=20, help="answers kept in the report")
    p.add_argument(
        "--conditions",
        default="served,image_only",
        help="served: the detection summary in the prompt, as the router sends it; image_only: without it",
    )
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    report = evaluate(args)
    for condition, scored in report["conditions"].items():
        print(f"\n## {condition}\n")
        print(markdown(scored | baselines_of(report)))
        for name, g in scored["goals"].items():
            print(f"goal {name} ({condition}): {g['value']} (>= {g['goal']}: {'met' if g['met'] else 'NOT met'})")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
