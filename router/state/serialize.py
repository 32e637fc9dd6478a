"""Detections, usage, verdicts, sent images, routes and bulk options to and from JSON, for the durable store."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from detectors.base import Box, Detection, Vote, VoteStatus
from engines.base import Usage
from router.flow.verdict import ModelVerdict, Verdict
from router.flow.vision import ImageSent
from router.types import AnswerFormat, BatchOptions, Migration, RequestKind, Route


def detection_to_dict(d: Detection) -> dict[str, Any]:
    return {
        "p": d.probability,
        "sha": d.image_sha256,
        "w": d.width,
        "h": d.height,
        "ms": d.latency_ms,
        "cached": d.cached,
        "notices": list(d.notices),
        "yes": d.yes_share,
        "vc": d.vote_confidence,
        "raw": d.raw_score,
        "quorum": d.quorum_met,
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
        # Rows stored before these were kept (they were dropped: every such result read the defaults).
        yes_share=raw.get("yes", 0.0),
        vote_confidence=raw.get("vc", 0.0),
        raw_score=raw.get("raw", 0.5),
        quorum_met=raw.get("quorum", True),
    )


def dumps_detection(d: Detection) -> str:
    return json.dumps(detection_to_dict(d), separators=(",", ":"))


def loads_detection(s: str) -> Detection:
    return detection_from_dict(json.loads(s))


def usage_to_dict(u: Usage) -> dict[str, int]:
    d = {"prompt": u.prompt_tokens, "completion": u.completion_tokens, "cached": u.cached_tokens}
    return d | ({"image": u.image_tokens} if u.image_tokens else {})


def usage_from_dict(raw: dict[str, int]) -> Usage:
    return Usage(raw.get("prompt", 0), raw.get("completion", 0), raw.get("cached", 0), raw.get("image", 0))


def verdict_to_dict(v: Verdict) -> dict[str, Any]:
    m = v.model
    return {
        "roadwork": m.roadwork,
        "active": m.active,
        "objects": [list(o) for o in m.objects],
        "lanes": m.lanes_affected,
        "conf": m.confidence,
        "p": v.merged_probability,
        "agrees": v.agrees_with_detection,
    }


def verdict_from_dict(raw: dict[str, Any]) -> Verdict:
    objects = tuple((str(t), int(n)) for t, n in raw["objects"])
    model = ModelVerdict(raw["roadwork"], raw["active"], objects, raw["lanes"], raw["conf"])
    return Verdict(model, raw["p"], raw["agrees"])


def image_sent_to_dict(i: ImageSent) -> dict[str, Any]:
    return asdict(i)


def image_sent_from_dict(raw: dict[str, Any]) -> ImageSent:
    return ImageSent(**raw)


def options_to_dict(o: BatchOptions) -> dict[str, Any]:
    return asdict(o) | {"format": o.format.value}


def options_from_dict(raw: dict[str, Any]) -> BatchOptions:
    """Options as stored; jobs stored before `format` existed are text jobs."""
    return BatchOptions(**(raw | {"format": AnswerFormat(raw.get("format", "text"))}))


def route_to_dict(r: Route) -> dict[str, Any]:
    return {
        "kind": r.kind.value,
        "pool": r.pool,
        "engine": r.engine,
        "replica": r.replica,
        "model": r.model,
        "fallback_from": list(r.fallback_from),
        "migrations": [asdict(m) for m in r.migrations],
    }


def route_from_dict(raw: dict[str, Any] | list[Any], old_migrations: list[list[Any]] | None = None) -> Route:
    """A stored route; results stored before 0.2 hold it as a list, and their migrations beside it."""
    if isinstance(raw, list):
        kind, pool, engine, replica, model, fallback_from = raw
        moves = tuple(Migration(*m) for m in old_migrations or ())
        return Route(RequestKind(kind), pool, engine, replica, model, tuple(fallback_from), moves)
    return Route(
        RequestKind(raw["kind"]),
        raw["pool"],
        raw["engine"],
        raw["replica"],
        raw["model"],
        tuple(raw.get("fallback_from", ())),
        tuple(Migration(**m) for m in raw.get("migrations", ())),
    )
