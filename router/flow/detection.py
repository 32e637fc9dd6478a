"""Composes the detection stage from the config: members, their devices and runners, calibration;
in this process, or in the host's shared detection process (`detection.process`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from detectors.base import DetectionStage, Runner, WeightsError
from detectors.calibration import IDENTITY, Calibration
from detectors.classifier import ClassifierSpec, ImageClassifier
from detectors.ensemble import Ensemble, Solo
from detectors.fused import FusedRunner
from detectors.proxy import EnsembleProxy
from detectors.ultralytics import UltralyticsDetector, UltralyticsSpec, resolve_weights
from router.config import Config, DetectorConfig, detection_shared
from router.errors import ConfigError
from router.flow.detection_process import START_TIMEOUT_S, DetectionProcess, shared_dir, socket_path


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def place(detectors: list[DetectorConfig], cuda_count: Callable[[], int] = _cuda_count) -> list[str]:
    """Each member's torch device: "cuda" spreads members round-robin over the visible GPUs, and
    "auto" does the same when there are any, else runs on the CPU."""
    devices, auto = [], 0
    for i, d in enumerate(detectors):
        if d.device != "auto" and not d.device.startswith("cuda"):
            devices.append(d.device)
            continue
        count = cuda_count()
        if d.device == "auto" and count == 0:
            devices.append("cpu")
            continue
        if count == 0:
            raise ConfigError(f"detectors[{i}].device ({d.name}): {d.device!r} asks for a GPU, but none is visible")
        if d.device in ("cuda", "auto"):
            devices.append(f"cuda:{auto % count}")
            auto += 1
            continue
        index = d.device.partition(":")[2]
        if not index.isdigit() or int(index) >= count:
            raise ConfigError(f"detectors[{i}].device ({d.name}): {d.device!r} is not one of cuda:0..cuda:{count - 1}")
        devices.append(d.device)
    return devices


def _fusable(d: DetectorConfig, device: str) -> bool:
    """ "auto" fuses YOLO .pt/.yaml members on GPUs; on a CPU predict() measured faster (docs/benchmarks.md)."""
    native = d.kind == "yolo" and d.weights.endswith((".pt", ".yaml", ".yml")) and device.startswith("cuda")
    return d.backend == "fused" or (d.backend == "auto" and native)


def build_ensemble(config: Config) -> Ensemble:
    """The detection stage from `[[detectors]]`; a bad member fails here, naming its key."""
    det = config.detection
    devices = place(config.detectors)
    groups: dict[str, list[UltralyticsDetector]] = {}
    runners: list[Runner] = []
    for i, (d, device) in enumerate(zip(config.detectors, devices, strict=True)):
        try:
            with open(resolve_weights(d.weights), "rb"):  # readable (not a directory, permitted)
                pass
        except OSError as exc:
            raise ConfigError(f"detectors[{i}].weights ({d.name}): {exc}") from exc
        if d.backend == "fused" and d.kind != "yolo":
            raise ConfigError(f"detectors[{i}].backend ({d.name}): 'fused' runs YOLO models only; use 'predict'")
        if d.kind == "classifier":
            runners.append(Solo(_classifier(d, device, d.vote_threshold or det.vote_threshold)))
            continue
        spec = UltralyticsSpec(
            name=d.name,
            weights=d.weights,
            kind=d.kind,
            weight=d.weight,
            vote_threshold=d.vote_threshold or det.vote_threshold,
            device=device,
            conf=d.conf,
            imgsz=d.imgsz,
            evidence_classes=tuple(d.evidence_classes),
            class_names=tuple(d.class_names),
            notice=d.notice,
        )
        if _fusable(d, device):
            groups.setdefault(device, []).append(UltralyticsDetector(spec))
        else:
            runners.append(Solo(UltralyticsDetector(spec)))
    for device, members in groups.items():
        runners.append(
            FusedRunner(
                members, device, cuda_graphs=det.cuda_graphs, max_batch=det.max_batch, gpu_decode=det.gpu_decode
            )
        )
    order = {d.name: i for i, d in enumerate(config.detectors)}
    runners.sort(key=lambda r: order[r.members[0].name])
    return Ensemble(
        runners,
        majority=det.majority,
        quorum=det.quorum,
        calibration=load_calibration(config),
        deadline_s=det.deadline_s,
        cache_size=det.cache_size,
        max_batch=det.max_batch,
        batch_wait_s=det.batch_wait_ms / 1e3,
    )


def _classifier(d: DetectorConfig, device: str, threshold: float) -> ImageClassifier:
    """An image-level member (no boxes: its vote counts in the probability, the others give the boxes)."""
    spec = ClassifierSpec(name=d.name, weights=d.weights, weight=d.weight, vote_threshold=threshold, device=device,
                          notice=d.notice)  # fmt: skip
    return ImageClassifier(spec)


def load_calibration(config: Config) -> Calibration:
    """The configured calibration; it must have been fitted for exactly the configured detectors."""
    if not config.detection.calibration:
        return IDENTITY
    try:
        calibration = Calibration.load(Path(resolve_weights(config.detection.calibration)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"detection.calibration: cannot load {config.detection.calibration!r}: {exc}") from exc
    names = tuple(d.name for d in config.detectors)
    if calibration.members != names:
        raise ConfigError(
            f"detection.calibration: {config.detection.calibration!r} was fitted for detectors "
            f"{list(calibration.members)}, but [[detectors]] lists {list(names)}; refit it with "
            '`python -m training.calibrate` or set detection.calibration = ""'
        )
    return calibration


async def warm_up_ensemble(ensemble: Ensemble, config: Config) -> None:
    """Load and run every member once; weights that do not load fail naming their key."""
    try:
        await ensemble.warmup()
    except WeightsError as exc:
        i = next(i for i, d in enumerate(config.detectors) if d.name == exc.member)
        raise ConfigError(f"detectors[{i}].weights ({exc.member}): {exc}") from exc


def build_stage(config: Config) -> tuple[DetectionStage, DetectionProcess | None]:
    """The detection stage: this process's own ensemble, or (`detection.process`: shared) a proxy of
    the host's detection process, with that process itself when this is the first router process."""
    if not detection_shared(config):
        return build_ensemble(config), None
    directory = shared_dir(config)
    proxy = EnsembleProxy(socket_path(directory), cache_size=config.detection.cache_size)
    return proxy, (DetectionProcess(config, directory) if config.server.worker_index == 0 else None)


async def warm_up_stage(stage: DetectionStage, process: DetectionProcess | None, config: Config) -> None:
    """Warm the ensemble up here, or start the shared detection process (the first router process)
    and wait until it answers (every router process: the extra ones bind only after this)."""
    if isinstance(stage, EnsembleProxy):
        if process is not None:
            await process.start()
        await stage.warmup(START_TIMEOUT_S)
    else:
        assert isinstance(stage, Ensemble)
        await warm_up_ensemble(stage, config)
