"""What the engine is told: system prompt, detection summary, history, question, image."""

from __future__ import annotations

from collections import Counter

from detectors.base import Detection, VoteStatus
from engines.base import ImagePart, Message


def detection_summary(d: Detection) -> str:
    """A short, factual account of the detection stage for the prompt and degraded answers."""
    verdict = "roadwork likely" if d.roadwork else "no roadwork evident"
    counts: Counter[str] = Counter()
    best: dict[str, float] = {}
    for vote in d.votes:
        for box in vote.boxes:
            counts[box.class_name] += 1
            best[box.class_name] = max(best.get(box.class_name, 0.0), box.confidence)
    objects = ", ".join(f"{n} {name} (max conf {best[name]:.2f})" for name, n in counts.most_common()) or "none"
    members = "; ".join(
        f"{v.detector}: {'yes' if v.roadwork else 'no'} ({v.confidence:.2f})"
        if v.status is VoteStatus.OK
        else f"{v.detector}: {v.status.value}"
        for v in d.votes
    )
    return (
        f"Detection: {verdict} (P(roadwork) = {d.probability:.2f}, image {d.width}x{d.height}). "
        f"Objects found: {objects}. Detector votes: {members or 'none'}."
    )


def build_messages(
    *,
    system_prompt: str,
    detection: Detection,
    question: str,
    history: list[tuple[str, str]],
    image: ImagePart | None,
    summary: bool = True,
) -> tuple[Message, ...]:
    """System + summary first and the image on the first user turn, so follow-ups share a prefix.
    `summary` False leaves the detection summary out (`generation.detections_in_prompt`)."""
    system = f"{system_prompt}\n{detection_summary(detection)}" if summary else system_prompt
    messages = [Message("system", system)]
    turns = [*history, (question, "")]
    for i, (q, a) in enumerate(turns):
        messages.append(Message("user", q, image if i == 0 else None))
        if i < len(turns) - 1:
            messages.append(Message("assistant", a))
    return tuple(messages)


def degraded_answer(detection: Detection) -> str:
    """The answer given when no engine could answer: the detections alone, said plainly."""
    return "No language engine could answer, so this answer comes from the detections alone. " + detection_summary(
        detection
    )
