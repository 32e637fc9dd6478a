"""The storage mapping: every field of a stored bulk result and of the job options round-trips."""

from __future__ import annotations

from dataclasses import MISSING, fields

from detectors.base import Box, Detection, Vote, VoteStatus
from engines.base import Usage
from router.flow.pipeline import ItemOutcome
from router.flow.verdict import ModelVerdict, Verdict
from router.flow.vision import ImageSent
from router.state.jobs import _outcome_to_json, _result_from_row
from router.state.serialize import detection_from_dict, detection_to_dict, options_from_dict, options_to_dict
from router.types import AnswerFormat, BatchOptions, Cost, DoneEvent, ItemStatus, Migration, RequestKind, Route

DETECTION = Detection(
    probability=0.83,
    votes=(Vote("a", 1.0, VoteStatus.OK, True, 0.9, (Box("cone", 0.9, (1.0, 2.0, 3.0, 4.0), True),), "a note", 3.5),),
    image_sha256="abc",
    width=640,
    height=480,
    cached=True,
    latency_ms=12.0,
    notices=("demo",),
    yes_share=0.75,
    vote_confidence=0.64,
    raw_score=0.71,
    quorum_met=False,
)


def test_the_detection_fixture_sets_every_field_off_its_default() -> None:
    """So a field the storage mapping drops cannot hide behind its default (yes_share and three others
    were dropped: every bulk result and image-less follow-up read them wrong)."""
    for obj in (DETECTION, DETECTION.votes[0], DETECTION.votes[0].boxes[0]):
        defaults = type(obj)(**{f.name: getattr(obj, f.name) for f in fields(obj) if f.default is MISSING})
        same = [
            f.name
            for f in fields(obj)
            if f.default is not MISSING and getattr(obj, f.name) == getattr(defaults, f.name)
        ]
        assert not same, f"{type(obj).__name__}: {same} left at their defaults"


def test_a_detection_stored_before_its_vote_summary_was_kept_reads_the_defaults() -> None:
    raw = detection_to_dict(DETECTION)
    for key in ("yes", "vc", "raw", "quorum"):
        del raw[key]
    old = detection_from_dict(raw)
    assert (old.yes_share, old.vote_confidence, old.raw_score, old.quorum_met) == (0.0, 0.0, 0.5, True)
    assert detection_from_dict(detection_to_dict(DETECTION)) == DETECTION


ERRORS = {"error_code", "error_message", "error_reason"}  # a failed item's fields


def _done() -> DoneEvent:
    return DoneEvent(
        answer='{"roadwork":true}',
        route=Route(
            RequestKind.BATCH,
            "lmdeploy",
            "lmdeploy",
            "http://x:1",
            "m",
            ("vllm",),
            (Migration("http://x:0", "lmdeploy", "http://x:1", 12, 40),),
        ),
        usage=Usage(300, 20, 256, 192),
        cost=Cost(0.001, 0.002),
        finish_reason="stop",
        degraded=False,
        session_id="",
        detection_ms=0.0,
        ttft_ms=1.0,
        total_ms=2.0,
        image=ImageSent(448, 336, 192, 30211, True, 1920, 1440, tokens_reported=True),
        verdict=Verdict(ModelVerdict(True, True, (("cone", 4), ("worker", 1)), 1, 0.9), 0.865, True),
    )


def test_a_stored_result_keeps_every_field() -> None:
    done = _done()
    status, raw = _outcome_to_json(ItemOutcome(detection=DETECTION, done=done))
    back = _result_from_row(7, "item-7", status, raw)
    assert back.status is ItemStatus.SUCCEEDED and (back.index, back.item_id) == (7, "item-7")
    assert back.detection == DETECTION and back.route == done.route and back.usage == done.usage
    assert back.cost == done.cost and back.answer == done.answer and back.degraded == done.degraded
    assert back.verdict == done.verdict and back.image == done.image
    stored = {f.name for f in fields(back)} - {"index", "item_id", "status", *ERRORS}
    assert all(getattr(back, name) not in (None, "") for name in stored - {"degraded"})


def test_a_result_stored_with_a_positional_route_reads_it() -> None:
    """Results stored before 0.2 hold the route as a list and its migrations beside it."""
    raw = (
        '{"detection":null,"error":null,"answer":"a","route":["batch","lmdeploy","lmdeploy","http://x:1","m",["vllm"]],'
        '"migrations":[["http://x:0","lmdeploy","http://x:1",12,40]]}'
    )
    assert _result_from_row(0, "", "succeeded", raw).route == _done().route


def test_a_failed_result_keeps_its_error() -> None:
    outcome = ItemOutcome(error_code="INVALID_ARGUMENT", error_message="bad image", error_reason="IMAGE_UNDECODABLE")
    status, raw = _outcome_to_json(outcome)
    back = _result_from_row(0, "", status, raw)
    assert back.status is ItemStatus.FAILED and back.verdict is None and back.image is None
    assert {f.name for f in fields(ItemOutcome)} - {"detection", "done"} == ERRORS  # every error field, checked:
    assert {n: getattr(back, n) for n in ERRORS} == {n: getattr(outcome, n) for n in ERRORS}


def test_a_failed_result_stored_before_reasons_existed_has_none() -> None:
    back = _result_from_row(0, "", "failed", '{"detection":null,"error":["UNAVAILABLE","no engine"]}')
    assert (back.error_code, back.error_message, back.error_reason) == ("UNAVAILABLE", "no engine", "")


def test_job_options_round_trip_and_old_jobs_are_text_jobs() -> None:
    options = BatchOptions("q?", "dump", 64, 0.5, False, AnswerFormat.VERDICT, 12.5)
    assert options_from_dict(options_to_dict(options)) == options
    old = {"default_question": "q?", "display_name": "", "max_tokens": 0, "temperature": None, "detect_only": True}
    assert options_from_dict(old).format is AnswerFormat.TEXT
    assert options_from_dict(old).item_timeout_s == 0.0  # the server's batch.item_timeout_s
