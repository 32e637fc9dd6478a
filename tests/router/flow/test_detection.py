"""Composing the detection stage from config: device placement, runners, calibration checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.ensemble import Solo
from detectors.fused import FusedRunner
from router.config import DetectorConfig, load_config
from router.errors import ConfigError
from router.flow.detection import build_ensemble, load_calibration, place


def _det(name: str, device: str = "cpu", **kw: object) -> DetectorConfig:
    return DetectorConfig(name=name, weights="roadwork-yolo11n.pt", device=device, **kw)  # type: ignore[arg-type]


def test_cuda_members_spread_round_robin_and_explicit_ones_stay() -> None:
    dets = [_det("a", "cuda"), _det("b", "cuda"), _det("c", "cpu"), _det("d", "cuda"), _det("e", "cuda:0")]
    assert place(dets, lambda: 2) == ["cuda:0", "cuda:1", "cpu", "cuda:0", "cuda:0"]
    assert place(dets[:2], lambda: 1) == ["cuda:0", "cuda:0"]


def test_auto_uses_the_gpus_when_visible_else_the_cpu() -> None:
    dets = [_det("a", "auto"), _det("b", "auto"), _det("c", "cpu")]
    assert place(dets, lambda: 2) == ["cuda:0", "cuda:1", "cpu"]
    assert place(dets, lambda: 0) == ["cpu", "cpu", "cpu"]
    assert DetectorConfig(name="x", weights="w.pt").device == "auto"


def test_bad_devices_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"detectors\[0\]\.device \(a\).*none is visible"):
        place([_det("a", "cuda")], lambda: 0)
    with pytest.raises(ConfigError, match=r"detectors\[1\]\.device \(b\): 'cuda:3' is not one of cuda:0..cuda:1"):
        place([_det("a"), _det("b", "cuda:3")], lambda: 2)


def test_default_config_runs_predict_on_cpu_and_is_calibrated() -> None:
    config = load_config(env={})
    ens = build_ensemble(config)
    try:
        assert [type(r) for r in ens._runners] == [Solo, Solo]  # CPU: predict() per member
        cal = load_calibration(config)
        assert cal.members == ("yolo11n-roadwork", "yolov8n-roadwork") and cal.report["test_calibrated"]["ece"] < 0.1
    finally:
        ens.close()


def test_fused_backend_groups_a_devices_members_in_config_order() -> None:
    env = {f"ROADWORK__DETECTORS__{i}__BACKEND": "fused" for i in range(2)}
    ens = build_ensemble(load_config(env=env))
    try:
        (runner,) = ens._runners
        assert isinstance(runner, FusedRunner) and [m.name for m in runner.members] == [
            "yolo11n-roadwork",
            "yolov8n-roadwork",
        ]
    finally:
        ens.close()


def test_calibration_for_other_detectors_is_refused(tmp_path: Path) -> None:
    config = load_config(env={"ROADWORK__DETECTORS__0__NAME": "mine"})
    with pytest.raises(ConfigError, match=r"detection\.calibration: 'calibration.json' was fitted for detectors"):
        load_calibration(config)
    broken = tmp_path / "cal.json"
    broken.write_text("{not json")
    config = load_config(env={"ROADWORK__DETECTION__CALIBRATION": str(broken)})
    with pytest.raises(ConfigError, match=r"detection\.calibration: cannot load"):
        load_calibration(config)
    assert load_calibration(load_config(env={"ROADWORK__DETECTION__CALIBRATION": ""})).members == ()
