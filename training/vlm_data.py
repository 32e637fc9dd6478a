"""Question/answer data for the demo vision-language model, made from procedurally drawn street scenes.

Each scene's facts (visible objects per class, roadwork, closed lanes, active work) come from the renderer
(training/synth.py), so every answer is checkable against the picture. Questions have several paraphrases;
answers are short, templated and deterministic, and each answer type has a parser (used by evaluation).
Prompts are exactly what the router sends: `router.flow.prompting.build_messages` with the real detection
ensemble's summary in the system message, the image on the first user turn, earlier turns replayed.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from detectors.base import Detection
from engines.base import ImagePart, Message
from engines.embedded import processor_chat
from router.flow.prompting import build_messages
from router.flow.verdict import INSTRUCTION, OBJECT_TYPES, ModelVerdict, VerdictError, parse_verdict
from router.flow.vision import PixelBudget, fit_image
from training.synth import CLASSES, augment_streetvision, render_scene_facts

assert OBJECT_TYPES == CLASSES, "the verdict's object types are the renderer's classes"

# Seed streams: training and evaluation draw scenes from disjoint streams, whatever seed each is given.
TRAIN_STREAM = 0x564C4D01
EVAL_STREAM = 0x564C4D02
QUESTION_STREAM = 0x564C4D03  # the questions asked (training conversations, evaluation items)
CONFIDENCE = 0.9  # the verdict's confidence: fixed, not calibrated
KINDS = ("roadwork", "objects", "count", "lane", "lanes", "active", "verdict")
COUNT_CLASSES = CLASSES
_NAMES: dict[str, tuple[str, str]] = {
    "cone": ("cone", "cones"),
    "drum": ("drum", "drums"),
    "barricade": ("barricade", "barricades"),
    "barrier": ("barrier", "barriers"),
    "vertical_panel": ("vertical panel", "vertical panels"),
    "arrow_board": ("arrow board", "arrow boards"),
    "work_sign": ("work sign", "work signs"),
    "worker": ("worker", "workers"),
    "work_vehicle": ("work vehicle", "work vehicles"),
}
_FORM_TO_CLASS = {form: cls for cls, forms in _NAMES.items() for form in forms}
_FORMS = "|".join(re.escape(f) for f in sorted(_FORM_TO_CLASS, key=len, reverse=True))
_COUNTED = re.compile(rf"\b(\d+|an?)\s+({_FORMS})\b")
_NAMED = re.compile(rf"\b({_FORMS})\b")
_NONE = re.compile(rf"\bno\s+(lanes?|{_FORMS})\b|^\s*none\b")

QUESTIONS: dict[str, tuple[str, ...]] = {
    "roadwork": (
        "Is there roadwork here?",
        "Is there roadwork in this image?",
        "Are there road works in this picture?",
        "Is this a construction zone?",
        "Do you see any roadwork?",
        "Is there a work zone on this street?",
    ),
    "objects": (
        "Which roadwork objects are present?",
        "What roadwork objects do you see?",
        "List the roadwork objects in the image.",
        "What construction equipment is in this picture?",
    ),
    "count": (
        "How many {} are there?",
        "How many {} do you see?",
        "Count the {} in the image.",
        "What is the number of {} here?",
    ),
    "lane": (
        "Is a lane closed?",
        "Is any lane closed?",
        "Is a traffic lane blocked off?",
        "Is a lane closed to traffic here?",
    ),
    "lanes": (
        "How many lanes are closed?",
        "How many lanes are blocked?",
        "How many traffic lanes are closed off?",
    ),
    "active": (
        "Is work active?",
        "Is work in progress here?",
        "Are workers or work vehicles present?",
        "Is anyone working here?",
    ),
}
# Share of each kind among the last questions of training conversations (clean images).
KIND_WEIGHTS = {"roadwork": 0.16, "objects": 0.1, "count": 0.28, "lane": 0.1, "lanes": 0.08, "active": 0.1}
KIND_WEIGHTS["verdict"] = 1.0 - sum(KIND_WEIGHTS.values())
HISTORY_TURNS = (0, 1, 2)
HISTORY_WEIGHTS = (0.6, 0.25, 0.15)


@dataclass(frozen=True)
class SceneFacts:
    """What a rendered scene shows: visible labelled objects per class, roadwork, closed lanes, active work."""

    counts: tuple[int, ...]  # per CLASSES index
    roadwork: bool
    lanes_closed: int
    active: bool

    @classmethod
    def from_scene(
        cls,
        labels: Sequence[tuple[int, float, float, float, float]],
        roadwork: bool,
        closures: Sequence[tuple[int, float, float]],
    ) -> SceneFacts:
        """Facts from render_scene_facts' labels, roadwork flag and lane closures (distinct lanes)."""
        counts = [0] * len(CLASSES)
        for label in labels:
            counts[label[0]] += 1
        active = counts[CLASSES.index("worker")] + counts[CLASSES.index("work_vehicle")] > 0
        return cls(tuple(counts), roadwork, len({lane for lane, _z0, _z1 in closures}), active)

    def count(self, name: str) -> int:
        """Visible objects of one class."""
        return self.counts[CLASSES.index(name)]

    @property
    def present(self) -> dict[str, int]:
        """Classes with at least one visible object, in CLASSES order, with their counts."""
        return {name: n for name, n in zip(CLASSES, self.counts, strict=True) if n}

    def verdict(self) -> ModelVerdict:
        """The structured verdict these facts call for (confidence fixed at CONFIDENCE)."""
        objects = tuple(self.present.items())
        return ModelVerdict(self.roadwork, self.active, objects, self.lanes_closed, CONFIDENCE)


@dataclass(frozen=True)
class Question:
    """One question: its kind, the class it asks about (count questions only) and the text sent."""

    kind: str
    target: str
    text: str


def _phrase(name: str, n: int) -> str:
    singular, plural = _NAMES[name]
    if n == 1:
        return f"{'an' if singular[0] in 'aeiou' else 'a'} {singular}"
    return f"{n} {plural}"


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _listing(counts: dict[str, int]) -> str:
    """ "4 cones, 2 barriers and a work sign"."""
    return _join([_phrase(name, n) for name, n in counts.items()])


def ask(kind: str, rng: np.random.Generator, target: str = "") -> Question:
    """A question of `kind` in a random paraphrase (count: about `target`, random when empty)."""
    if kind == "verdict":
        inner = ask(str(rng.choice(KINDS[:-1])), rng)
        return Question("verdict", "", f"{inner.text}\n{INSTRUCTION}")
    if kind == "count":
        target = target or str(rng.choice(COUNT_CLASSES))
    template = QUESTIONS[kind][int(rng.integers(len(QUESTIONS[kind])))]
    return Question(kind, target, template.format(_NAMES[target][1]) if kind == "count" else template)


def answer(q: Question, f: SceneFacts, augmented: bool = False) -> str:
    """The correct short answer (augmented images: roadwork only, as their objects are unknown)."""
    if q.kind == "roadwork":
        if not f.roadwork:
            return "No, there is no roadwork."
        return "Yes, there is roadwork." if augmented else f"Yes, there is roadwork: {_listing(f.present)}."
    if augmented:
        raise ValueError(f"augmented images only have roadwork answers, not {q.kind!r}")
    if q.kind == "objects":
        return _objects_answer(f)
    if q.kind == "count":
        return _count_answer(q.target, f.count(q.target))
    if q.kind in ("lane", "lanes"):
        n = f.lanes_closed
        closed = f"{n} lane{' is' if n == 1 else 's are'} closed."
        if n == 0:
            return "No lane is closed."
        return f"Yes, {closed}" if q.kind == "lane" else closed
    if q.kind == "active":
        crew = {k: v for k, v in f.present.items() if k in ("worker", "work_vehicle")}
        return f"Yes, work is active: {_listing(crew)}." if crew else "No, no workers or work vehicles are present."
    if q.kind == "verdict":
        return f.verdict().to_json()
    raise ValueError(f"unknown question kind {q.kind!r}")


def _objects_answer(f: SceneFacts) -> str:
    if not f.present:
        return "None."
    text = _join([_phrase(k, 1) if n == 1 else _NAMES[k][1] for k, n in f.present.items()])
    return text[0].upper() + text[1:] + "."


def _count_answer(name: str, n: int) -> str:
    singular, plural = _NAMES[name]
    if n == 0:
        return f"There are no {plural}."
    return f"There is 1 {singular}." if n == 1 else f"There are {n} {plural}."


# ------------------------------------------------------------------------------------------------------ parsers
def parse_yes_no(text: str) -> bool | None:
    """True for an answer starting "yes", False for "no", None otherwise."""
    word = re.match(r"\s*([a-z]+)", text.lower())
    return {"yes": True, "no": False}.get(word.group(1)) if word else None


def parse_count(text: str) -> int | None:
    """The first integer in the answer; 0 for "no <objects or lanes>" or "none" without one; None otherwise."""
    number = re.search(r"\b(\d+)\b", text)
    if number:
        return int(number.group(1))
    return 0 if _NONE.search(text.lower()) else None


def parse_object_counts(text: str) -> dict[str, int]:
    """Counted objects in an answer ("4 cones, 2 barriers and a work sign") as class -> count."""
    out: dict[str, int] = {}
    for number, form in _COUNTED.findall(text.lower()):
        cls = _FORM_TO_CLASS[form]
        out[cls] = out.get(cls, 0) + (int(number) if number.isdigit() else 1)
    return out


def parse_objects(text: str) -> frozenset[str]:
    """The classes an answer names (singular or plural); "None." is the empty set."""
    return frozenset(_FORM_TO_CLASS[m] for m in _NAMED.findall(text.lower()))


def try_parse_verdict(text: str) -> ModelVerdict | None:
    """The answer as a verdict, or None when it does not fit the schema."""
    try:
        return parse_verdict(text.strip())
    except VerdictError:
        return None


# -------------------------------------------------------------------------------------------------- conversations
def conversation(rng: np.random.Generator, f: SceneFacts, augmented: bool) -> list[tuple[Question, str]]:
    """Turns (question, correct answer): 0-2 earlier ones as the router replays them (clean images), then the last."""
    n = 0 if augmented else int(rng.choice(HISTORY_TURNS, p=HISTORY_WEIGHTS))
    turns: list[tuple[Question, str]] = []
    while len(turns) < n + 1:
        q = ask("roadwork", rng) if augmented else ask(_weighted_kind(rng), rng)
        if all((q.kind, q.target) != (p.kind, p.target) for p, _a in turns):  # no question twice
            turns.append((q, answer(q, f, augmented)))
    return turns


def _weighted_kind(rng: np.random.Generator) -> str:
    kinds = list(KIND_WEIGHTS)
    return kinds[int(rng.choice(len(kinds), p=list(KIND_WEIGHTS.values())))]


def processor_messages(messages: Sequence[Message], answer_text: str | None = None) -> list[dict[str, Any]]:
    """The router's messages in the HF processor's chat format, as the embedded engine builds them, and
    the answer to learn as the last (assistant) turn when given."""
    out = processor_chat(messages)
    if answer_text is not None:
        out.append({"role": "assistant", "content": [{"type": "text", "text": answer_text}]})
    return out


def chat(
    system_prompt: str,
    detection: Detection,
    image: ImagePart,
    turns: Sequence[tuple[Question, str]],
    final: bool,
    summary: bool = True,
) -> list[dict[str, Any]]:
    """Processor messages for `turns`; `final` keeps the last answer (training), else leaves it to generate.
    `summary` False leaves the detection summary out, as `generation.detections_in_prompt = false` does."""
    history = [(q.text, a) for q, a in turns[:-1]]
    last_q, last_a = turns[-1]
    messages = build_messages(
        system_prompt=system_prompt,
        detection=detection,
        question=last_q.text,
        history=history,
        image=image,
        summary=summary,
    )
    return processor_messages(messages, last_a if final else None)


def corpus(facts: Sequence[SceneFacts], summaries: Sequence[str], system_prompt: str) -> list[str]:
    """Texts the tokenizer is trained on: every paraphrase, answers for the given facts, summaries, the instruction."""
    lines = [system_prompt, INSTRUCTION, *summaries]
    for kind, templates in QUESTIONS.items():
        for t in templates:
            lines += [t.format(_NAMES[c][1]) for c in COUNT_CLASSES] if kind == "count" else [t]
    probe = np.random.default_rng(0)
    for f in facts:
        for kind in KINDS:
            targets = COUNT_CLASSES if kind == "count" else ("",)
            lines += [answer(ask(kind, probe, t), f) for t in targets]
    return lines


# ------------------------------------------------------------------------------------------------------- scenes
@dataclass(frozen=True)
class SceneImage:
    """One image the model sees (a scene clean, or StreetVision-augmented) with the scene's facts."""

    scene: int
    jpeg: bytes
    width: int
    height: int
    facts: SceneFacts
    augmented: bool

    def part(self) -> ImagePart:
        """The image as the router hands it to engines."""
        return ImagePart(self.jpeg, "image/jpeg", self.width, self.height)

    def pil(self) -> Image.Image:
        """The decoded RGB image (what the detectors see)."""
        return Image.open(io.BytesIO(self.jpeg)).convert("RGB")

    def sent(self, budget: PixelBudget) -> tuple[Image.Image, ImagePart]:
        """The image as the router sends it to a pool with `budget` (router.flow.vision.fit_image: resized
        to the processor's size as a JPEG when outside it), decoded for the processor, and its part."""
        part, _ = fit_image(self.part(), budget)
        return Image.open(io.BytesIO(part.data)).convert("RGB"), part


def processor_budget(processor: Any) -> PixelBudget:
    """The pixel budget a pool serving this model should have: its image processor's own bounds."""
    size = processor.image_processor.size
    return PixelBudget(int(size["shortest_edge"]), int(size["longest_edge"]))


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def render_one(args: tuple[int, int, int, bool, tuple[int, int]]) -> list[SceneImage]:
    """Scene i of (stream, seed): its clean image and, when asked, a StreetVision-augmented copy."""
    stream, seed, i, augment, size = args
    rng = np.random.default_rng([stream, seed, i])
    img, labels, roadwork, closures = render_scene_facts(rng, size)
    facts = SceneFacts.from_scene(labels, roadwork, closures)
    out = [SceneImage(i, _jpeg(img, 90), img.width, img.height, facts, False)]
    if augment:
        aug = augment_streetvision(rng, img)
        out.append(SceneImage(i, _jpeg(aug, 95), aug.width, aug.height, facts, True))
    return out


def render_images(
    stream: int, seed: int, n: int, aug_fraction: float, workers: int, size: tuple[int, int] = (640, 480)
) -> list[SceneImage]:
    """n scenes (scene i depends only on (stream, seed, i)); a share `aug_fraction` also augmented."""
    jobs = [(stream, seed, i, int((i + 1) * aug_fraction) > int(i * aug_fraction), size) for i in range(n)]
    if workers > 1 and n > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(render_one, jobs, chunksize=max(1, min(64, n // (4 * workers)))))
    else:
        parts = [render_one(j) for j in jobs]
    return [im for p in parts for im in p]


async def _detect_all(config_path: Path | None, images: Sequence[SceneImage], concurrency: int) -> list[Detection]:
    from router.config import load_config
    from router.flow.detection import build_ensemble

    ensemble = build_ensemble(load_config(config_path))
    sem = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    decoders = ThreadPoolExecutor(4, thread_name_prefix="vlm-decode")  # JPEG decoding releases the GIL

    async def one(i: int, im: SceneImage) -> Detection:
        async with sem:
            image = await loop.run_in_executor(decoders, im.pil)
            return await ensemble.detect(image, b"", digest=f"vlm-{i}-{im.scene}-{im.augmented}")

    try:
        await ensemble.warmup()
        return list(await asyncio.gather(*(one(i, im) for i, im in enumerate(images))))
    finally:
        ensemble.close()
        decoders.shutdown()


def detect(images: Sequence[SceneImage], config_path: Path | None = None, concurrency: int = 64) -> list[Detection]:
    """The configured detection ensemble's result for every image, as the router computes it."""
    return asyncio.run(_detect_all(config_path, images, concurrency))


def system_prompt(config_path: Path | None = None) -> str:
    """The router's configured system prompt (the summary follows it on its own line)."""
    from router.config import load_config

    return load_config(config_path).generation.system_prompt
