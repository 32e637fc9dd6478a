"""Ultralytics members (YOLO, RT-DETR): .pt, .onnx, .engine weights, or a .yaml for random weights."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from detectors.base import Box, DetectorOutput, SpecMember, WeightsError

# No downloads, ever: weights are local files (ultralytics reads the literal string "true").
os.environ.setdefault("YOLO_OFFLINE", "true")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_VERBOSE", "false")

MODELS_DIR = Path(__file__).parent / "models"
UNTRAINED_NOTICE = "detector '{name}' runs untrained placeholder weights ({weights}): its votes are not meaningful"


@dataclass
class UltralyticsSpec:
    """How to build one member (mirrors the `[[detectors]]` config table)."""

    name: str
    weights: str
    kind: str = "yolo"  # "yolo" or "rtdetr"
    weight: float = 1.0
    vote_threshold: float = 0.5  # evidence at or above this votes "roadwork"
    device: str = "cpu"
    conf: float = 0.25
    imgsz: int = 640
    evidence_classes: tuple[str, ...] = ()  # empty: every class counts as evidence
    class_names: tuple[str, ...] = ()  # names for a .yaml-built model
    notice: str = ""  # caveat shown with every detection
    seed: int = 0


def resolve_weights(weights: str) -> str:
    """A bare file name is looked up in the package's models folder; paths are used as given."""
    path = Path(weights).expanduser()
    if path.exists():
        return str(path)
    bundled = MODELS_DIR / weights
    if bundled.exists():
        return str(bundled)
    raise FileNotFoundError(f"weights '{weights}' not found (looked in the working directory and {MODELS_DIR})")


@dataclass
class UltralyticsDetector(SpecMember):
    """One ensemble member; load() and detect() must run on the same (long-lived) worker thread."""

    spec: UltralyticsSpec
    _model: Any = field(default=None, init=False, repr=False)

    @property
    def notices(self) -> tuple[str, ...]:
        notices: tuple[str, ...] = (f"{self.spec.name}: {self.spec.notice}",) if self.spec.notice else ()
        if self.spec.weights.endswith((".yaml", ".yml")):
            notices += (UNTRAINED_NOTICE.format(name=self.spec.name, weights=self.spec.weights),)
        return notices

    def load(self) -> None:
        self._model = load_yolo(self.spec)

    def detect(self, image: Image.Image) -> DetectorOutput:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[Image.Image]) -> list[DetectorOutput]:
        """ultralytics `predict()` on a batch of images."""
        if self._model is None:
            self.load()
        results = self._model.predict(
            images, conf=self.spec.conf, imgsz=self.spec.imgsz, device=self.spec.device, verbose=False
        )
        return [self._output(r) for r in results]

    def _output(self, result: Any) -> DetectorOutput:
        names = result.names
        h, w = result.orig_shape
        evidence = set(self.spec.evidence_classes)
        boxes = []
        data = result.boxes
        if data is not None and len(data):
            for xyxy, conf, cls in zip(
                data.xyxy.cpu().tolist(), data.conf.cpu().tolist(), data.cls.cpu().tolist(), strict=True
            ):
                name = str(names.get(int(cls), int(cls)))
                boxes.append(
                    Box(
                        class_name=name,
                        confidence=float(conf),
                        xyxy=clip_box(xyxy, w, h),
                        evidence=not evidence or name in evidence,
                    )
                )
        return DetectorOutput(boxes=tuple(boxes))


def load_yolo(spec: UltralyticsSpec) -> Any:
    """The ultralytics model object (YOLO or RTDETR) for a spec; .yaml builds seeded random weights."""
    import torch
    from ultralytics import RTDETR, YOLO  # type: ignore[attr-defined]

    path = resolve_weights(spec.weights)
    cls: Any = RTDETR if spec.kind == "rtdetr" else YOLO
    if path.endswith((".yaml", ".yml")):
        torch.manual_seed(spec.seed)  # reproducible placeholder weights
    try:
        model = cls(path)
    except Exception as exc:  # ultralytics raises TypeError, RuntimeError, ... for a bad checkpoint
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        raise WeightsError(spec.name, f"{path} cannot be loaded: {lines[0].removeprefix('ERROR ❌️ ')}") from exc
    if not path.endswith((".yaml", ".yml")):
        return model
    if spec.class_names:
        model.model.names = dict(enumerate(spec.class_names))
    return model


def clip_box(xyxy: Sequence[float], w: float, h: float) -> tuple[float, float, float, float]:
    """A box clipped to the image (boxes can overshoot it: RT-DETR's by float error, letterbox padding)."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return (min(w, max(0.0, x1)), min(h, max(0.0, y1)), min(w, max(0.0, x2)), min(h, max(0.0, y2)))
