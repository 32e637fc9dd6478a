"""Turns member votes into one outcome: a weighted 2/3 majority, its confidence and a raw score.

The rules (issue 3's seed plan):

* A member votes "roadwork" when its evidence (its best evidence-box confidence) reaches its
  threshold. Only members that answered (status OK) with a positive weight take part.
* The verdict is "roadwork" when the "yes" voters hold at least `majority` (default 2/3) of the
  answering weight. With two equal members that means both; with three, any two.
* The confidence is the weighted geometric mean of the "yes" voters' evidence
  (exp(sum w_i ln c_i / sum w_i)); 0 when nobody voted yes.
* The raw score in [0, 1] is > 0.5 exactly when the verdict is "roadwork":
  roadwork: 0.5 + 0.5 * confidence;  otherwise: 0.5 * the weighted mean evidence of all answering
  members (always < 0.5 then, since at least one of them is below its threshold).
  `detectors.calibration` maps it to the calibrated P(roadwork), keeping 0.5 fixed.
* Nobody answered (or every weight is 0): no verdict can be reached; the score is 0.5 ("no
  information"), the verdict "no roadwork", and `answered` is False.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detectors.base import Vote, VoteStatus

TWO_THIRDS = 2.0 / 3.0
_EPS = 1e-9
# The share comparison tolerates rounding: 2 of 3 equal weights must pass `majority = 0.6666667` as
# the default config writes 2/3 (3.3e-8 above it), not only TWO_THIRDS itself.
_SHARE_TOL = 1e-6


@dataclass(frozen=True)
class Outcome:
    """The vote's result before calibration."""

    roadwork: bool  # the weighted majority voted "roadwork"
    yes_share: float  # share of the answering weight that voted "roadwork"
    confidence: float  # weighted geometric mean of the "yes" voters' evidence (0 when none)
    score: float  # raw score in [0, 1]; > 0.5 exactly when `roadwork`
    answered_weight: float  # total weight of the members that answered
    answered: bool  # at least one member with a positive weight answered


def tally(votes: tuple[Vote, ...], majority: float = TWO_THIRDS) -> Outcome:
    """Apply the voting rules to the members' votes."""
    counted = [v for v in votes if v.status is VoteStatus.OK and v.weight > 0]
    total = sum(v.weight for v in counted)
    if total <= 0:
        return Outcome(False, 0.0, 0.0, 0.5, 0.0, False)
    yes = [v for v in counted if v.roadwork]
    yes_weight = sum(v.weight for v in yes)
    share = yes_weight / total
    confidence = _geometric_mean(yes)
    if yes and share >= majority - _SHARE_TOL:
        return Outcome(True, share, confidence, min(1.0, 0.5 + 0.5 * confidence), total, True)
    mean_evidence = sum(v.weight * v.confidence for v in counted) / total
    score = min(0.5 - _EPS, 0.5 * mean_evidence)
    return Outcome(False, share, confidence, max(0.0, score), total, True)


def _geometric_mean(votes: list[Vote]) -> float:
    """Weighted geometric mean of the votes' evidence; 0 for no votes."""
    weight = sum(v.weight for v in votes)
    if not votes or weight <= 0:
        return 0.0
    return math.exp(sum(v.weight * math.log(max(v.confidence, _EPS)) for v in votes) / weight)
