"""Detection types and the Detector protocol."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from PIL import Image

from detectors.cache import LRUCache


class UndecodableImage(ValueError):
    """An image whose header was valid but whose pixels could not be decoded (a runner found out)."""


@dataclass(frozen=True)
class EncodedJpeg:
    """A JPEG validated from its header but not decoded yet: a runner that decodes on its GPU takes the
    bytes as they are (one batched nvjpeg call), any other decodes it on the CPU (`rgb`)."""

    data: bytes
    size: tuple[int, int]  # (width, height), from the header


Picture = Image.Image | EncodedJpeg


def rgb(picture: Picture) -> Image.Image:
    """The picture's RGB pixels, decoded on the CPU if they were not yet; UndecodableImage if they cannot be."""
    if isinstance(picture, Image.Image):
        return picture if picture.mode == "RGB" else picture.convert("RGB")
    try:
        with Image.open(io.BytesIO(picture.data)) as img:
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError) as exc:  # corrupt or truncated data past a valid header
        raise UndecodableImage(f"the JPEG is corrupt or truncated: {exc}") from exc


def decoded(images: list[Picture]) -> list[Image.Image | UndecodableImage]:
    """Each picture's RGB pixels (decoded on the CPU where needed), or why it could not be decoded."""
    out: list[Image.Image | UndecodableImage] = []
    for p in images:
        try:
            out.append(rgb(p))
        except UndecodableImage as exc:
            out.append(exc)
    return out


@dataclass(frozen=True)
class Box:
    """One detected object, in pixels of the submitted image."""

    class_name: str
    confidence: float
    xyxy: tuple[float, float, float, float]
    evidence: bool  # whether this class counts as roadwork evidence for its detector


@dataclass(frozen=True)
class DetectorOutput:
    """What one detector saw in one image: boxes, or an image-level score from a member without boxes."""

    boxes: tuple[Box, ...]
    image_score: float | None = None  # P(roadwork) for the whole image (detectors.classifier)

    @property
    def evidence(self) -> float:
        """Roadwork evidence in [0, 1]: the image score where there is one, else the highest confidence
        among evidence boxes (0 when none)."""
        if self.image_score is not None:
            return min(1.0, max(0.0, self.image_score))
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

    probability: float  # calibrated P(roadwork); > 0.5 exactly when the weighted majority said yes
    votes: tuple[Vote, ...]
    image_sha256: str
    width: int
    height: int
    cached: bool = False
    latency_ms: float = 0.0
    notices: tuple[str, ...] = field(default_factory=tuple)
    yes_share: float = 0.0  # share of the answering weight that voted "roadwork"
    vote_confidence: float = 0.0  # weighted geometric mean of the "roadwork" voters' evidence
    raw_score: float = 0.5  # the vote's score before calibration (detectors.voting)
    quorum_met: bool = True  # enough of the configured weight answered (detection.quorum)

    @property
    def roadwork(self) -> bool:
        """StreetVision rule: roadwork exactly when P > 0.5 (calibration keeps the vote's side)."""
        return self.probability > 0.5


class WeightsError(Exception):
    """A member's weights file is there but does not load (truncated, corrupted, not a checkpoint): a
    configuration error, unlike a member failing at run time (left out of the vote)."""

    def __init__(self, member: str, message: str) -> None:
        super().__init__(message)
        self.member = member


class Member(Protocol):
    """How an ensemble member votes: its name, vote weight, threshold and caveats."""

    @property
    def name(self) -> str: ...

    @property
    def weight(self) -> float: ...

    @property
    def threshold(self) -> float:
        """Evidence at or above which this member votes "roadwork"."""
        ...

    @property
    def notices(self) -> tuple[str, ...]:
        """Caveats about this member shown with every detection (e.g. untrained weights)."""
        ...


class MemberSpec(Protocol):
    """What a member's spec holds for its vote (UltralyticsSpec, ClassifierSpec)."""

    name: str
    weight: float
    vote_threshold: float


class SpecMember:
    """A member's name, weight and threshold, read from its `spec`."""

    spec: MemberSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def weight(self) -> float:
        return self.spec.weight

    @property
    def threshold(self) -> float:
        return self.spec.vote_threshold


class Detector(Member, Protocol):
    """An object detector; its methods block and run on the detector's own worker thread."""

    def load(self) -> None:
        """Load weights; called once, in the worker thread that will run `detect_batch`."""
        ...

    def detect_batch(self, images: list[Image.Image]) -> list[DetectorOutput]:
        """Detect objects in RGB images, one output per image."""
        ...


class Runner(Protocol):
    """Runs one or more members together on one worker thread (see detectors.ensemble)."""

    @property
    def members(self) -> tuple[Member, ...]: ...

    def load(self) -> None:
        """Load every member; a member that fails to load reports its error in every run."""
        ...

    @property
    def decodes_jpeg(self) -> bool:
        """Whether `run` decodes EncodedJpeg pictures on its own device (else the CPU decodes them)."""
        ...

    def run(self, images: list[Picture]) -> list[list[DetectorOutput | Exception]]:
        """Every member's output (or error, UndecodableImage for an image it could not decode) for
        every image: result[image][member]."""
        ...


class DetectionStage(Protocol):
    """What the router uses of its detection stage: an `Ensemble` in its own process, or an
    `EnsembleProxy` of the host's shared detection process (detectors.proxy)."""

    ready: bool

    @property
    def cache(self) -> LRUCache[Detection]: ...

    @property
    def decodes_jpeg(self) -> bool:
        """Whether JPEGs may arrive undecoded (`EncodedJpeg`): the router then checks only their header."""
        ...

    async def warmup(self) -> None: ...

    def batch_sizes(self, digest: str) -> dict[str, int]: ...

    def lookup(self, digest: str) -> Detection | None: ...

    async def detect(self, image: Picture, data: bytes, digest: str | None = None) -> Detection: ...

    async def detect_many(self, images: list[Picture], digests: list[str]) -> list[Detection | UndecodableImage]: ...

    def close(self) -> None: ...
