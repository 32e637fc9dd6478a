"""Turns member votes into one P(roadwork) (weighted evidence; issue 3 adds the 2/3 rule and calibration)."""

from __future__ import annotations

from detectors.base import Vote, VoteStatus


def roadwork_probability(votes: tuple[Vote, ...]) -> float:
    """Weighted mean of the counting members' evidence, in [0, 1]; 0.0 when no member counts."""
    counted = [v for v in votes if v.status is VoteStatus.OK and v.weight > 0]
    total = sum(v.weight for v in counted)
    if total <= 0:
        return 0.0
    p = sum(v.weight * v.confidence for v in counted) / total
    return min(1.0, max(0.0, p))
