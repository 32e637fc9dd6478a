"""Composing the detection stage from config: device placement, runners, calibration checks."""

from __future__ import annotations

import asyncio
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


def _with_classifier(tmp_path: Path, weights: Path | str, kind: str = "classifier", **extra: str) -> Path:
    """The quick-start config plus an image-classifier member (uncalibrated: the calibration names two)."""
    from router.config import DEFAULT_CONFIG

    table = f'\n[[detectors]]\nname = "cnn"\nkind = "{kind}"\nweights = "{weights}"\nweight = 1.0\n'
    table += "".join(f"{k} = {v}\n" for k, v in extra.items())
    path = tmp_path / "with-classifier.toml"
    path.write_text(DEFAULT_CONFIG.read_text().replace('calibration = "calibration.json"', 'calibration = ""') + table)
    return path


def test_a_classifier_member_runs_alone_and_bad_weights_name_the_key(tmp_path: Path, classifier_weights: Path) -> None:
    from detectors.classifier import ImageClassifier
    from router.flow.detection import warm_up_ensemble

    config = load_config(_with_classifier(tmp_path, classifier_weights), env={})
    ens = build_ensemble(config)
    try:
        runner = ens._runners[2]
        assert isinstance(runner, Solo) and isinstance(runner.detector, ImageClassifier)
        assert runner.detector.threshold == config.detection.vote_threshold
    finally:
        ens.close()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    config = load_config(_with_classifier(tmp_path, bad), env={})
    ens = build_ensemble(config)
    try:
        with pytest.raises(ConfigError, match=r"detectors\[2\]\.weights \(cnn\): .*bad.pt cannot be loaded"):
            asyncio.run(warm_up_ensemble(ens, config))
    finally:
        ens.close()
    with pytest.raises(ConfigError, match=r"detectors\[2\]\.backend \(cnn\): 'fused' runs YOLO models only"):
        build_ensemble(load_config(_with_classifier(tmp_path, classifier_weights, backend='"fused"'), env={}))
    with pytest.raises(ConfigError, match=r"detectors\.2\.kind: Input should be 'yolo', 'rtdetr' or 'classifier'"):
        load_config(_with_classifier(tmp_path, classifier_weights, kind="cnn"), env={})


def test_detect_over_grpc_counts_the_classifier_and_keeps_the_yolo_boxes(
    tmp_path: Path, classifier_weights: Path, sample_jpeg: bytes
) -> None:
    from router._proto.roadwork.v1 import router_pb2 as pb
    from tests.conftest import RunningRouter

    env = {"ROADWORK__SERVER__PORT": "0", "ROADWORK__SERVER__METRICS_PORT": "0", "ROADWORK__SERVER__GRACE_S": "1",
           "ROADWORK__STORAGE__PATH": str(tmp_path / "router.sqlite3")}  # fmt: skip
    router = RunningRouter(load_config(_with_classifier(tmp_path, classifier_weights), env=env)).wait_ready()
    try:
        d = router.stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=60).detection
    finally:
        router.stop()
    assert [v.detector for v in d.votes] == ["yolo11n-roadwork", "yolov8n-roadwork", "cnn"]
    assert all(v.status == pb.VOTE_STATUS_OK for v in d.votes)
    cnn = d.votes[2]
    assert not cnn.boxes and 0.0 <= cnn.confidence <= 1.0 and cnn.roadwork == (cnn.confidence >= 0.5)
    assert any(v.boxes for v in d.votes[:2])  # the sample's cones: the YOLO members give the boxes
    assert 0.0 <= d.roadwork_probability <= 1.0
    assert d.roadwork_vote_share == pytest.approx(sum(v.roadwork for v in d.votes) / 3, abs=1e-6)
