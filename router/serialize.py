"""Detections and usage to and from JSON, for the durable store."""

from __future__ import annotations

import json
from typing import Any

from detectors.base import Box, Detection, Vote, VoteStatus
from engines.base import Usage


def detection_to_dict(d: Detection) -> dict[str, Any]:
    return {
        "p": d.probability,
        "sha": d.image_sha256,
        "w": d.width,
        "h": d.height,
        "ms": d.latency_ms,
        "cached": d.cached,
        "notices": list(d.notices),
        "votes": [
            {
                "detector": v.detector,
                "weight": v.weight,
                "status": v.status.value,
                "roadwork": v.roadwork,
                "conf": v.confidence,
                "error": v.error,
                "ms": v.latency_ms,
                "boxes": [[b.class_name, b.confidence, list(b.xyxy), b.evidence] for b in v.boxes],
            }
            for v in d.votes
        ],
    }


def detection_from_dict(raw: dict[str, Any]) -> Detection:
    votes = tuple(
        Vote(
            detector=v["detector"],
            weight=v["weight"],
            status=VoteStatus(v["status"]),
            roadwork=v["roadwork"],
            confidence=v["conf"],
            error=v["error"],
            latency_ms=v["ms"],
            boxes=tuple(Box(b[0], b[1], (b[2][0], b[2][1], b[2][2], b[2][3]), b[3]) for b in v["boxes"]),
        )
        for v in raw["votes"]
    )
    return Detection(
        probability=raw["p"],
        votes=votes,
        image_sha256=raw["sha"],
        width=raw["w"],
        height=raw["h"],
        latency_ms=raw["ms"],
        cached=bool(raw.get("cached")),
        notices=tuple(raw.get("notices", ())),
    )


def dumps_detection(d: Detection) -> str:
    return json.dumps(detection_to_dict(d), separators=(",", ":"))


def loads_detection(s: str) -> Detection:
    return detection_from_dict(json.loads(s))


def usage_to_dict(u: Usage) -> dict[str, int]:
    return {"prompt": u.prompt_tokens, "completion": u.completion_tokens, "cached": u.cached_tokens}


def usage_from_dict(raw: dict[str, int]) -> Usage:
    return Usage(raw.get("prompt", 0), raw.get("completion", 0), raw.get("cached", 0))
