"""The vote rules: weighted 2/3 majority, geometric-mean confidence, raw score, ties, empty ensembles."""

from __future__ import annotations

import math

import pytest

from detectors.base import Vote, VoteStatus
from detectors.voting import tally


def v(name: str, weight: float, evidence: float, threshold: float = 0.5, status: VoteStatus = VoteStatus.OK) -> Vote:
    return Vote(name, weight, status, roadwork=evidence >= threshold, confidence=evidence)


def test_two_of_three_equal_members_is_a_majority() -> None:
    out = tally((v("a", 1, 0.9), v("b", 1, 0.6), v("c", 1, 0.1)))
    assert out.roadwork and out.yes_share == pytest.approx(2 / 3)
    assert out.confidence == pytest.approx(math.sqrt(0.9 * 0.6))  # geometric mean of the yes voters
    assert out.score == pytest.approx(0.5 + 0.5 * math.sqrt(0.54))


def test_one_of_two_is_not_enough_and_the_score_stays_below_half() -> None:
    out = tally((v("a", 1, 0.99), v("b", 1, 0.2)))
    assert not out.roadwork and out.yes_share == 0.5
    assert out.confidence == pytest.approx(0.99)  # the minority's confidence is still reported
    assert out.score == pytest.approx(0.5 * (0.99 + 0.2) / 2) and out.score < 0.5


def test_weights_decide_not_heads() -> None:
    heavy_yes = (v("big", 3, 0.8), v("s1", 1, 0.1), v("s2", 0.5, 0.0))
    out = tally(heavy_yes)
    assert out.roadwork and out.yes_share == pytest.approx(3 / 4.5)
    assert out.confidence == pytest.approx(0.8)
    heavy_no = (v("big", 3, 0.1), v("s1", 1, 0.9), v("s2", 1, 0.9))
    assert not tally(heavy_no).roadwork


def test_weighted_geometric_mean() -> None:
    out = tally((v("a", 3, 0.9), v("b", 1, 0.6)))
    assert out.confidence == pytest.approx(math.exp((3 * math.log(0.9) + math.log(0.6)) / 4))


def test_exact_majority_boundary_and_ties() -> None:
    # 2 of 3 equal weights is exactly 2/3 (float error tolerated); 1 of 2 (a tie) is "no".
    assert tally((v("a", 0.1, 0.9), v("b", 0.1, 0.9), v("c", 0.1, 0.0))).roadwork
    assert not tally((v("a", 1, 0.9), v("b", 1, 0.0))).roadwork
    assert tally((v("a", 1, 0.9), v("b", 1, 0.0)), majority=0.5).roadwork


def test_two_of_three_pass_the_default_configs_rounded_majority() -> None:
    from router.config import load_config

    majority = load_config(env={}).detection.majority  # 0.6666667 in default.toml, above 2/3
    assert majority > 2 / 3
    assert tally((v("a", 1, 0.9), v("b", 1, 0.9), v("c", 1, 0.0)), majority).roadwork
    assert not tally((v("a", 1, 0.9), v("b", 1, 0.0), v("c", 1, 0.0)), majority).roadwork


def test_evidence_at_threshold_votes_yes_and_a_unanimous_no_scores_low() -> None:
    out = tally((v("a", 1, 0.5), v("b", 1, 0.5)))
    assert out.roadwork and out.score == pytest.approx(0.75)
    out = tally((v("a", 1, 0.0), v("b", 1, 0.0)))
    assert not out.roadwork and out.score == 0.0 and out.confidence == 0.0


def test_failed_timed_out_and_zero_weight_members_do_not_count() -> None:
    votes = (
        v("a", 1, 0.9),
        v("slow", 5, 0.0, status=VoteStatus.TIMED_OUT),
        v("broken", 5, 0.0, status=VoteStatus.FAILED),
        v("muted", 0, 0.0),
    )
    out = tally(votes)
    assert out.roadwork and out.yes_share == 1.0 and out.answered_weight == 1


def test_empty_ensemble_has_no_information() -> None:
    for votes in ((), (v("z", 0, 1.0),), (v("t", 1, 0.0, status=VoteStatus.TIMED_OUT),)):
        out = tally(votes)
        assert not out.answered and not out.roadwork and out.score == 0.5 and out.yes_share == 0.0


def test_score_is_above_half_exactly_on_a_roadwork_verdict() -> None:
    import itertools

    grid = [0.0, 0.1, 0.49, 0.5, 0.51, 0.9, 1.0]
    for a, b, c in itertools.product(grid, repeat=3):
        out = tally((v("a", 1, a), v("b", 2, b), v("c", 1, c)))
        assert (out.score > 0.5) == out.roadwork, (a, b, c, out)
        assert 0.0 <= out.score <= 1.0
