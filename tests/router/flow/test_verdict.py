"""The structured verdict: schema-checked parsing and the merge with the detection."""

from __future__ import annotations

import json

import pytest

from detectors.base import Detection
from router.flow.verdict import SCHEMA, ModelVerdict, VerdictError, merge, parse_verdict

GOOD = {
    "roadwork": True,
    "active": False,
    "objects": [{"type": "work_sign", "count": 1}, {"type": "cone", "count": 5}],
    "lanes_affected": 1,
    "confidence": 0.8,
}


def _detection(p: float) -> Detection:
    return Detection(probability=p, votes=(), image_sha256="x", width=640, height=480)


def test_parses_a_verdict_in_schema_order() -> None:
    v = parse_verdict(json.dumps(GOOD))
    assert v == ModelVerdict(True, False, (("cone", 5), ("work_sign", 1)), 1, 0.8)
    assert parse_verdict(v.to_json()) == v  # what a trained model emits parses back to itself
    assert set(json.loads(v.to_json())) == set(SCHEMA["properties"])


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"roadwork": tr', "not JSON"),
        ("[1, 2]", "not an object"),
        (json.dumps(GOOD | {"roadwork": "yes"}), "'roadwork' is str"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "active"}), "'active' is missing"),
        (json.dumps(GOOD | {"objects": [{"type": "tree", "count": 1}]}), "not a known 'type'"),
        (json.dumps(GOOD | {"objects": [{"type": "cone", "count": 0}]}), "outside 1..99"),
        (json.dumps(GOOD | {"objects": [{"type": "cone", "count": True}]}), "'count' is bool"),
        (json.dumps(GOOD | {"lanes_affected": 9}), "out of range"),
        (json.dumps(GOOD | {"confidence": 1.5}), "out of range"),
        (json.dumps(GOOD | {"note": "x"}), "unknown keys"),
        (json.dumps(GOOD | {"objects": [{"type": "cone", "count": 99}, {"type": "cone", "count": 99}]}), "twice"),
        (json.dumps(GOOD | {"objects": [{"type": "cone", "count": 1, "colour": "orange"}]}), "not a known"),
        (json.dumps(GOOD | {"objects": [{"type": t, "count": 1} for t in ["cone"] * 10]}), "at most one entry"),
    ],
)
def test_rejects_what_does_not_fit_the_schema(text: str, why: str) -> None:
    with pytest.raises(VerdictError, match=why):
        parse_verdict(text)


def test_merge_weighs_the_model_against_the_detection() -> None:
    sure_yes = ModelVerdict(True, True, (), 1, 1.0)
    agree = merge(sure_yes, _detection(0.9), 0.5)
    assert agree.merged_probability == pytest.approx(0.95) and agree.agrees_with_detection and agree.merged_roadwork
    disagree = merge(ModelVerdict(False, False, (), 0, 0.4), _detection(0.9), 0.5)  # unsure model, sure detector
    assert not disagree.agrees_with_detection and disagree.merged_probability == pytest.approx(0.6)
    assert disagree.merged_roadwork  # the more confident side decides
    overruled = merge(ModelVerdict(False, False, (), 0, 1.0), _detection(0.6), 0.5)
    assert not overruled.merged_roadwork and overruled.merged_probability == pytest.approx(0.3)
    assert merge(sure_yes, _detection(0.2), 0.0).merged_probability == pytest.approx(0.2)  # weight 0: detection only
