"""Detection types and the Detector protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from PIL import Image


@dataclass(frozen=True)
class Box:
    """One detected object, in pixels of the submitted image."""

    class_name: str
    confidence: float
    xyxy: tuple[float, float, float, float]
    evidence: bool  # whether this class counts as roadwork evidence for its detector


@dataclass(frozen=True)
class DetectorOutput:
    """What one detector saw in one image."""

    boxes: tuple[Box, ...]

    @property
    def evidence(self) -> float:
        """Roadwork evidence in [0, 1]: the highest confidence among evidence boxes (0 when none)."""
        return max((b.confidence for b in self.boxes if b.evidence), default=0.0)


class VoteStatus(Enum):
    """Whether a detector's vote counts."""

    OK = "ok"
    TIMED_OUT = "timed_out"
    FAILED = "failed"


@dataclass(frozen=True)
class Vote:
    """One ensemble member's vote on one image."""

    detector: str
    weight: float
    status: VoteStatus
    roadwork: bool = False
    confidence: float = 0.0
    boxes: tuple[Box, ...] = ()
    error: str = ""
    latency_ms: float = 0.0


@dataclass(frozen=True)
class Detection:
    """The detection stage's result for one image."""

    probability: float
    votes: tuple[Vote, ...]
    image_sha256: str
    width: int
    height: int
    cached: bool = False
    latency_ms: float = 0.0
    notices: tuple[str, ...] = field(default_factory=tuple)

    @property
    def roadwork(self) -> bool:
        """StreetVision rule: roadwork exactly when P > 0.5."""
        return self.probability > 0.5


class Detector(Protocol):
    """An object detector; `detect` blocks, and the ensemble runs it in the detector's own worker."""

    @property
    def name(self) -> str: ...

    @property
    def weight(self) -> float: ...

    @property
    def notices(self) -> tuple[str, ...]:
        """Caveats about this member shown with every detection (e.g. untrained weights)."""
        ...

    def load(self) -> None:
        """Load weights; called once, in the worker thread that will run `detect`."""
        ...

    def detect(self, image: Image.Image) -> DetectorOutput:
        """Detect objects in an RGB image."""
        ...
