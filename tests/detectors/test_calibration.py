"""Calibration: fitted on labelled scores, monotone, never moves an answer across 0.5."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from detectors.calibration import IDENTITY, Calibration, Curve, fit, fit_curve, reliability


def _overconfident(n: int, seed: int = 1) -> tuple[list[float], list[bool]]:
    """Scores whose 'yes' side is right 70 % of the time however high they are, 'no' side 90 %."""
    rng = random.Random(seed)
    scores, labels = [], []
    for _ in range(n):
        if rng.random() < 0.5:
            scores.append(rng.uniform(0.8, 1.0))
            labels.append(rng.random() < 0.7)
        else:
            scores.append(rng.uniform(0.0, 0.2))
            labels.append(rng.random() < 0.1)
    return scores, labels


def test_fit_reduces_calibration_error_on_held_out_data() -> None:
    scores, labels = _overconfident(4000)
    cal = fit(scores[:2000], labels[:2000], ("a", "b"))
    before = reliability([IDENTITY(s) for s in scores[2000:]], labels[2000:])
    after = reliability([cal(s) for s in scores[2000:]], labels[2000:])
    assert after["ece"] < 0.05 < before["ece"]
    assert after["brier"] < before["brier"] and after["log_loss"] < before["log_loss"]
    assert cal(0.95) == pytest.approx(0.7, abs=0.06) and cal(0.1) == pytest.approx(0.1, abs=0.05)


def test_calibration_keeps_each_answer_on_its_side_and_is_monotone() -> None:
    # A curve fitted to labels that contradict the vote would cross 0.5; the clamp forbids it.
    contrary = Calibration(no=Curve(a=5.0, b=1.0), yes=Curve(a=-5.0, b=1.0))
    grid = [i / 200 for i in range(201)]
    for cal in (contrary, IDENTITY, fit(*_overconfident(500), ("a",))):
        ps = [cal(s) for s in grid]
        assert all(0.0 <= p <= 1.0 for p in ps)
        assert all((p > 0.5) == (s > 0.5) for p, s in zip(ps, grid, strict=True))
        assert all(b >= a for a, b in itertools.pairwise(ps))


def test_identity_and_empty_fits() -> None:
    assert IDENTITY(0.3) == pytest.approx(0.3) and IDENTITY(0.8) == pytest.approx(0.8)
    assert fit_curve([], []) == Curve()


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    cal = fit(*_overconfident(300), ("yolo", "detr"))
    path = tmp_path / "cal.json"
    cal.save(path)
    again = Calibration.load(path)
    assert again == cal and again.members == ("yolo", "detr")
