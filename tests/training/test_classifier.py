"""The classifier trainer on a tiny CPU run: deterministic from its seed, writes a loadable member."""

from __future__ import annotations

from pathlib import Path

import torch

from detectors.classifier import ClassifierSpec, ImageClassifier, load_net
from tests.conftest import TINY_CLASSIFIER_RUN
from training.classifier import main

TINY = list(TINY_CLASSIFIER_RUN)  # the session fixture's run


def test_a_tiny_run_is_deterministic_and_loads(tmp_path: Path, classifier_weights: Path) -> None:
    out = tmp_path / "again.pt"
    report = main([str(out), *TINY, "--cache", str(tmp_path / "cache")])
    assert report["steps_done"] == 3 and not report["stopped_by_minutes"] and report["imgsz"] == 64
    assert (tmp_path / "cache").is_dir()
    a, size = load_net(str(out))
    b, _ = load_net(str(classifier_weights))  # the same command in the session fixture
    assert size == 64
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka
    member = ImageClassifier(ClassifierSpec(name="c", weights=str(out)))
    member.load()
    assert member.weight == 1.0 and member.threshold == 0.5


def test_the_minutes_budget_stops_early(tmp_path: Path) -> None:
    report = main([str(tmp_path / "cut.pt"), *TINY, "--minutes", "1e-9"])
    assert report["steps_done"] == 1 and report["stopped_by_minutes"]
    assert report["best"]["step"] == 1 and (tmp_path / "cut.pt").exists()
