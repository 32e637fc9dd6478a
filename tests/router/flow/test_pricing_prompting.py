"""Cost estimates and prompt construction."""

from __future__ import annotations

import pytest

from detectors.base import Box, Detection, Vote, VoteStatus
from engines.base import ImagePart, Usage
from router.config import Price
from router.dispatch.pricing import estimate
from router.flow.prompting import build_messages, degraded_answer, detection_summary


def _detection(p: float = 0.8) -> Detection:
    boxes = (
        Box("cone", 0.9, (1, 2, 3, 4), True),
        Box("cone", 0.7, (5, 6, 7, 8), True),
        Box("worker", 0.6, (0, 0, 1, 1), False),
    )
    votes = (Vote("a", 1.0, VoteStatus.OK, True, 0.9, boxes), Vote("b", 1.0, VoteStatus.TIMED_OUT))
    return Detection(p, votes, "ab" * 32, 640, 480)


def test_cost_charges_cached_prompt_tokens_at_cached_rate() -> None:
    price = Price(prompt_per_1k=1.0, completion_per_1k=2.0, cached_prompt_per_1k=0.1)
    cost = estimate(price, Usage(prompt_tokens=1000, completion_tokens=500, cached_tokens=600))
    assert cost.prompt_usd == pytest.approx(0.4 + 0.06)
    assert cost.completion_usd == pytest.approx(1.0)
    assert cost.total_usd == pytest.approx(1.46)
    assert estimate(Price(prompt_per_1k=1.0), Usage(1000, 0, 1000)).prompt_usd == pytest.approx(1.0)


def test_summary_names_verdict_objects_and_votes() -> None:
    s = detection_summary(_detection())
    assert "roadwork likely" in s and "P(roadwork) = 0.80" in s
    assert "2 cone (max conf 0.90)" in s and "1 worker" in s
    assert "a: yes (0.90)" in s and "b: timed_out" in s
    assert "no roadwork evident" in detection_summary(_detection(0.5))  # exactly 0.5 is "none"


def test_messages_put_image_on_first_user_turn_for_a_stable_prefix() -> None:
    img = ImagePart(b"\xff\xd8", "image/jpeg")
    msgs = build_messages(system_prompt="S", detection=_detection(), question="Q3",
                          history=[("Q1", "A1"), ("Q2", "A2")], image=img)  # fmt: skip
    assert [m.role for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[1].image is img and all(m.image is None for m in msgs[2:])
    assert [m.text for m in msgs[1:]] == ["Q1", "A1", "Q2", "A2", "Q3"]
    assert msgs[0].text.startswith("S\nDetection:")
    blind = build_messages(
        system_prompt="S", detection=_detection(), question="Q", history=[], image=img, summary=False
    )
    assert blind[0].text == "S" and blind[1].image is img  # generation.detections_in_prompt = false


def test_degraded_answer_says_so() -> None:
    assert degraded_answer(_detection()).startswith("No language engine could answer")
