"""Maps the vote's raw score to a calibrated P(roadwork), fitted on validation data.

Method ("Platt scaling per verdict side"): the raw score s (see `detectors.voting`) is > 0.5
exactly when the weighted majority voted "roadwork". Each side gets its own logistic curve on
logit(s), P = sigmoid(a + b * logit(s)), fitted by maximum likelihood on labelled validation
images whose score fell on that side, then clamped to its side of 0.5. So calibration changes how
sure the answer is, never which side of 0.5 it is on: the verdict, and the MCC StreetVision
computes from P > 0.5, stay exactly the vote's. `training/calibrate.py` fits and reports it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

_FLOOR = 1e-4  # scores are clipped to [_FLOOR, 1 - _FLOOR] before the logit
_SIDE_GAP = 1e-6  # "roadwork" answers stay strictly above 0.5


def _logit(s: float) -> float:
    s = min(1 - _FLOOR, max(_FLOOR, s))
    return math.log(s / (1 - s))


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


@dataclass(frozen=True)
class Curve:
    """One side's logistic curve on logit(score)."""

    a: float = 0.0
    b: float = 1.0

    def __call__(self, score: float) -> float:
        return _sigmoid(self.a + self.b * _logit(score))


@dataclass(frozen=True)
class Calibration:
    """Score -> P(roadwork); the identity when unfitted."""

    no: Curve = Curve()
    yes: Curve = Curve()
    members: tuple[str, ...] = ()  # the ensemble it was fitted for, in order
    report: dict[str, Any] = field(default_factory=dict, compare=False)

    def __call__(self, score: float) -> float:
        if score > 0.5:
            return min(1.0, max(0.5 + _SIDE_GAP, self.yes(score)))
        return max(0.0, min(0.5, self.no(score)))

    @classmethod
    def load(cls, path: Path) -> Calibration:
        data = json.loads(path.read_text())
        return cls(
            no=Curve(**data["no"]),
            yes=Curve(**data["yes"]),
            members=tuple(data["members"]),
            report=data.get("report", {}),
        )

    def save(self, path: Path) -> None:
        data = {"method": "platt-per-verdict-side", "members": list(self.members), "no": asdict(self.no)}
        data |= {"yes": asdict(self.yes), "report": self.report}
        path.write_text(json.dumps(data, indent=2) + "\n")


IDENTITY = Calibration()


def fit_curve(scores: list[float], labels: list[bool], l2: float = 1e-3, iters: int = 100) -> Curve:
    """Maximum-likelihood logistic fit of labels on logit(score) (damped Newton, light L2)."""
    if not scores:
        return Curve()
    z = np.array([_logit(s) for s in scores])
    y = np.array(labels, dtype=float)
    x: npt.NDArray[np.float64] = np.stack([np.ones_like(z), z], axis=1)

    def loss(w: npt.NDArray[np.float64]) -> float:
        t = x @ w  # negative log likelihood of sigmoid(t), written stably
        return float((np.logaddexp(0, t) - y * t).sum() + 0.5 * l2 * (w @ w))

    w = np.array([0.0, 1.0])
    for _ in range(iters):
        p = 0.5 * (1 + np.tanh(0.5 * (x @ w)))
        grad = x.T @ (p - y) + l2 * w
        hess = x.T @ (x * (p * (1 - p))[:, None]) + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        t, current = 1.0, loss(w)
        while loss(w - t * step) > current and t > 1e-6:  # halve until the step helps
            t /= 2
        w = w - t * step
        if float(np.abs(t * step).max()) < 1e-9:
            break
    return Curve(a=float(w[0]), b=max(0.0, float(w[1])))  # b >= 0 keeps P monotone in the score


def fit(scores: list[float], labels: list[bool], members: tuple[str, ...]) -> Calibration:
    """Fit both sides on (score, label) pairs from validation images."""
    no = [(s, y) for s, y in zip(scores, labels, strict=True) if s <= 0.5]
    yes = [(s, y) for s, y in zip(scores, labels, strict=True) if s > 0.5]
    return Calibration(
        no=fit_curve([s for s, _ in no], [y for _, y in no]),
        yes=fit_curve([s for s, _ in yes], [y for _, y in yes]),
        members=members,
    )


def reliability(probs: list[float], labels: list[bool], bins: int = 10) -> dict[str, float]:
    """Brier score, log loss and expected calibration error (equal-width bins)."""
    p = np.clip(np.array(probs, dtype=float), 1e-6, 1 - 1e-6)
    y = np.array(labels, dtype=float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    ece = sum(
        abs(float(p[idx == k].mean() - y[idx == k].mean())) * float((idx == k).mean())
        for k in range(bins)
        if (idx == k).any()
    )
    return {
        "brier": round(float(((p - y) ** 2).mean()), 4),
        "log_loss": round(float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()), 4),
        "ece": round(ece, 4),
    }
