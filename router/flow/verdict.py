"""The structured answer: the JSON schema engines are constrained to, its parsing, and its merge with the detection.

The merge (documented on `AnswerVerdict` in the proto): the model's call becomes a probability,
0.5 + 0.5 * confidence for "roadwork", 0.5 - 0.5 * confidence for "no roadwork"; the merged
probability is the weighted mean of it and the detection's calibrated probability
(`generation.verdict_model_weight`, default 0.5). Agreeing sources reinforce each other; when they
disagree, the side further from 0.5 after weighting wins (at the default weight: the more confident
one), and `agrees_with_detection` is false.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from detectors.base import Detection

OBJECT_TYPES = (
    "cone",
    "drum",
    "barricade",
    "barrier",
    "vertical_panel",
    "arrow_board",
    "work_sign",
    "worker",
    "work_vehicle",
)
MAX_LANES = 8
MAX_COUNT = 99
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "roadwork": {"type": "boolean"},
        "active": {"type": "boolean"},
        "objects": {
            "type": "array",
            "maxItems": len(OBJECT_TYPES),
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "type": {"enum": list(OBJECT_TYPES)},
                    "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
                },
                "required": ["type", "count"],
            },
        },
        "lanes_affected": {"type": "integer", "minimum": 0, "maximum": MAX_LANES},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["roadwork", "active", "objects", "lanes_affected", "confidence"],
}
SCHEMA_NAME = "roadwork_verdict"
INSTRUCTION = (
    'Answer only with a JSON object: {"roadwork": true or false, "active": true or false (workers or work '
    'vehicles present), "objects": [{"type": "cone", "count": 3}, ...] (types: '
    + ", ".join(OBJECT_TYPES)
    + '), "lanes_affected": lanes closed or narrowed, "confidence": 0 to 1}.'
)


@dataclass(frozen=True)
class ModelVerdict:
    """What the model said, parsed and checked against SCHEMA."""

    roadwork: bool
    active: bool
    objects: tuple[tuple[str, int], ...]
    lanes_affected: int
    confidence: float

    def to_json(self) -> str:
        """Compact JSON in SCHEMA's key order (what a model trained on it emits)."""
        objects = [{"type": t, "count": n} for t, n in self.objects]
        body = {"roadwork": self.roadwork, "active": self.active, "objects": objects}
        body |= {"lanes_affected": self.lanes_affected, "confidence": round(self.confidence, 2)}
        return json.dumps(body, separators=(",", ":"))


@dataclass(frozen=True)
class Verdict:
    """A parsed model verdict merged with the detection (see the module docstring)."""

    model: ModelVerdict
    merged_probability: float
    agrees_with_detection: bool

    @property
    def merged_roadwork(self) -> bool:
        return self.merged_probability > 0.5


class VerdictError(ValueError):
    """The engine's answer is not a verdict; the message says what is wrong with it."""


def _field(raw: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = raw.get(name)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise VerdictError(f"'{name}' is {type(value).__name__ if name in raw else 'missing'}")
    return value


def parse_verdict(text: str) -> ModelVerdict:
    """The model's JSON answer as a ModelVerdict; VerdictError when it does not fit SCHEMA."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise VerdictError(f"not JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise VerdictError(f"a JSON {type(raw).__name__}, not an object")
    if extra := set(raw) - set(SCHEMA["properties"]):
        raise VerdictError(f"unknown keys {sorted(extra)}")
    objects = _field(raw, "objects", list)
    if len(objects) > len(OBJECT_TYPES):
        raise VerdictError(f"{len(objects)} objects: at most one entry per type ({len(OBJECT_TYPES)})")
    counts: dict[str, int] = {}
    for obj in objects:
        if not isinstance(obj, dict) or obj.get("type") not in OBJECT_TYPES or set(obj) - {"type", "count"}:
            raise VerdictError(f"object {obj!r} is not a known 'type' with a 'count'")
        count = _field(obj, "count", int)
        if not 1 <= count <= MAX_COUNT:
            raise VerdictError(f"count {count} of '{obj['type']}' is outside 1..{MAX_COUNT}")
        if obj["type"] in counts:
            raise VerdictError(f"'{obj['type']}' is listed twice")
        counts[obj["type"]] = count
    lanes = _field(raw, "lanes_affected", int)
    confidence = float(_field(raw, "confidence", (int, float)))
    if not 0 <= lanes <= MAX_LANES or not 0.0 <= confidence <= 1.0:
        raise VerdictError(f"lanes_affected {lanes} or confidence {confidence} out of range")
    return ModelVerdict(
        roadwork=_field(raw, "roadwork", bool),
        active=_field(raw, "active", bool),
        objects=tuple((t, counts[t]) for t in OBJECT_TYPES if t in counts),
        lanes_affected=lanes,
        confidence=confidence,
    )


def merge(model: ModelVerdict, detection: Detection, model_weight: float) -> Verdict:
    """The model's verdict next to the detection's, combined as the module docstring says."""
    half = 0.5 * model.confidence
    model_p = 0.5 + half if model.roadwork else 0.5 - half
    merged = (1.0 - model_weight) * detection.probability + model_weight * model_p
    return Verdict(model, round(merged, 4), model.roadwork == detection.roadwork)
