"""An image-level member: a small CNN giving P(roadwork) for the whole image, with no boxes.

StreetVision scores the image, not its boxes, so this member votes on the image as a whole; the YOLO
members still give the boxes the router's answers use. Its weights file (training/classifier.py
writes it) holds the network's widths, its input size and its state dict, loaded with
`torch.load(weights_only=True)`, so no code runs from the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from detectors.base import DetectorOutput, SpecMember, WeightsError
from detectors.ultralytics import resolve_weights

FORMAT = "roadwork-classifier/1"
WIDTHS = (16, 32, 64, 128)  # channels per stage; each stage halves the resolution (cells of 16 px)


def build_net(widths: tuple[int, ...] = WIDTHS) -> Any:
    """The network: stages of (3x3 conv stride 2, 3x3 conv), BN and ReLU, then a head scoring every
    cell of the last feature map (a cell holds roadwork or not); the image's logit is its best cell's."""
    from torch import nn

    layers: list[nn.Module] = []
    prev = 3
    for w in widths:
        for stride in (2, 1):
            layers += [nn.Conv2d(prev, w, 3, stride, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            prev = w
    head = nn.Sequential(nn.Conv2d(prev, 64, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(64, 1, 1))
    return nn.ModuleDict({"features": nn.Sequential(*layers), "cells": head})


def cell_logits(net: Any, x: Any) -> Any:
    """Each cell's roadwork logit for a batch of preprocessed images (N, 3, S, S) -> (N, S/16, S/16)."""
    return net["cells"](net["features"](x)).squeeze(1)


def logits(net: Any, x: Any) -> Any:
    """The image's roadwork logit (its best cell's: one cone anywhere is enough), (N, 3, S, S) -> (N,)."""
    return cell_logits(net, x).flatten(1).amax(dim=1)


def preprocess(images: list[Image.Image], size: int) -> Any:
    """RGB images squashed to size x size, scaled to about [-2, 2], as one (N, 3, S, S) float tensor."""
    import torch

    arr = np.stack([np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)) for im in images])
    return pixels_to_tensor(torch.from_numpy(arr))


def pixels_to_tensor(batch: Any) -> Any:
    """uint8 pixels (N, S, S, 3) to the network's input (N, 3, S, S): (x / 255 - 0.5) / 0.25."""
    return (batch.permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.25


def save(path: str, net: Any, size: int, widths: tuple[int, ...], meta: dict[str, Any]) -> None:
    """Write the weights file: format tag, widths, input size, state dict (float32) and training facts."""
    import torch

    state = {k: v.detach().float().clone() for k, v in net.state_dict().items()}
    torch.save({"format": FORMAT, "widths": list(widths), "imgsz": size, "state_dict": state, "meta": meta}, path)


def load_net(path: str) -> tuple[Any, int]:
    """The network (eval mode) and its input size from a weights file; ValueError if it is not one."""
    import torch

    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} weights file (training/classifier.py writes them)")
    net = build_net(tuple(int(w) for w in data["widths"]))
    net.load_state_dict(data["state_dict"])
    return net.eval(), int(data["imgsz"])


@dataclass
class ClassifierSpec:
    """How to build the member (mirrors the `[[detectors]]` config table)."""

    name: str
    weights: str
    weight: float = 1.0
    vote_threshold: float = 0.5  # P(roadwork) at or above this votes "roadwork"
    device: str = "cpu"
    notice: str = ""


@dataclass
class ImageClassifier(SpecMember):
    """The member; load() and detect_batch() run on its runner's one worker thread."""

    spec: ClassifierSpec
    _net: Any = field(default=None, init=False, repr=False)
    _size: int = field(default=0, init=False, repr=False)

    @property
    def notices(self) -> tuple[str, ...]:
        return (f"{self.spec.name}: {self.spec.notice}",) if self.spec.notice else ()

    def load(self) -> None:
        path = resolve_weights(self.spec.weights)
        try:
            net, self._size = load_net(path)
        except Exception as exc:  # torch raises UnpicklingError, RuntimeError, KeyError, ... for a bad file
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            raise WeightsError(self.spec.name, f"{path} cannot be loaded: {lines[0]}") from exc
        self._net = net.to(self.spec.device)

    def detect_batch(self, images: list[Image.Image]) -> list[DetectorOutput]:
        """Each image's P(roadwork) as the output's image score (no boxes)."""
        import torch

        if self._net is None:
            self.load()
        with torch.inference_mode():
            p = torch.sigmoid(logits(self._net, preprocess(images, self._size).to(self.spec.device)))
        return [DetectorOutput(boxes=(), image_score=float(v)) for v in p.cpu().tolist()]
