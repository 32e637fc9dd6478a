"""The held-out scene style: deterministic, both kinds, independent of the training generator."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from training.heldout import SIZES, render
from training.quality import metrics


def test_render_is_deterministic_and_gives_both_kinds() -> None:
    a, a_rw = render(np.random.default_rng(5))
    b, b_rw = render(np.random.default_rng(5))
    assert a_rw == b_rw and a.tobytes() == b.tobytes()
    kinds = set()
    for seed in range(12):
        img, rw = render(np.random.default_rng(seed))
        assert img.mode == "RGB" and img.size in SIZES
        kinds.add(rw)
    assert kinds == {True, False}
    forced, rw = render(np.random.default_rng(0), roadwork=False)
    assert rw is False and forced.size in SIZES


def test_roadwork_changes_the_picture() -> None:
    """The same draws with and without a work zone differ (the zone is drawn, not only labelled)."""
    yes, _ = render(np.random.default_rng(3), roadwork=True)
    no, _ = render(np.random.default_rng(3), roadwork=False)
    assert yes.size == no.size and yes.tobytes() != no.tobytes()


def test_it_shares_no_code_with_the_training_generator() -> None:
    tree = ast.parse((Path(__file__).resolve().parents[2] / "training" / "heldout.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m and m.startswith(("training", "router", "detectors")) for m in imported), imported


def test_quality_metrics() -> None:
    m = metrics([0.9, 0.2, 0.7, 0.4], [True, False, False, True])
    assert (m["precision"], m["recall"], m["accuracy"]) == (0.5, 0.5, 0.5)
    assert m["mcc"] == 0.0 and (m["p_min"], m["p_max"]) == (0.2, 0.9)
