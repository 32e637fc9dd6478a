"""Protobuf <-> domain objects; with server.py, error_details.py and reflection.py, all that touches the stubs."""

from __future__ import annotations

import base64
import binascii
import json
from typing import TypeVar

from google.protobuf import duration_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from detectors.base import Detection, VoteStatus
from engines.base import Usage
from router._proto.roadwork.v1 import router_pb2 as pb
from router.api.error_details import item_status_pb
from router.config import RoutingConfig
from router.dispatch.breaker import CircuitBreaker, State
from router.dispatch.pools import Pool, Replica
from router.errors import MalformedRequest, OptionOutOfRange
from router.flow.verdict import Verdict
from router.flow.vision import ImageSent
from router.types import (
    AnswerFormat,
    AskEvent,
    AskInput,
    BatchItemInput,
    BatchOptions,
    BatchState,
    Cost,
    DeltaEvent,
    DetectionEvent,
    Dispatched,
    DoneEvent,
    FallingBack,
    ItemResult,
    ItemStatus,
    JobView,
    ProgressEvent,
    Queued,
    RequestKind,
    Retrying,
    Route,
)

_FORMAT = {
    pb.ANSWER_FORMAT_UNSPECIFIED: AnswerFormat.TEXT,
    pb.ANSWER_FORMAT_TEXT: AnswerFormat.TEXT,
    pb.ANSWER_FORMAT_VERDICT: AnswerFormat.VERDICT,
}
_KIND = {
    RequestKind.MULTI_TURN: pb.REQUEST_KIND_MULTI_TURN,
    RequestKind.BATCH: pb.REQUEST_KIND_BATCH,
    RequestKind.SINGLE_SHOT: pb.REQUEST_KIND_SINGLE_SHOT,
}
_VOTE = {
    VoteStatus.OK: pb.VOTE_STATUS_OK,
    VoteStatus.TIMED_OUT: pb.VOTE_STATUS_TIMED_OUT,
    VoteStatus.FAILED: pb.VOTE_STATUS_FAILED,
}
_ENGINE = {
    "embedded": pb.ENGINE_EMBEDDED,
    "openai_http": pb.ENGINE_OPENAI_HTTP,
    "vllm": pb.ENGINE_VLLM,
    "sglang": pb.ENGINE_SGLANG,
    "lmdeploy": pb.ENGINE_LMDEPLOY,
    "detections_only": pb.ENGINE_DETECTIONS_ONLY,
}
_POLICY = {
    "round_robin": pb.ROUTING_POLICY_ROUND_ROBIN,
    "least_loaded": pb.ROUTING_POLICY_LEAST_LOADED,
    "power_of_two": pb.ROUTING_POLICY_POWER_OF_TWO,
    "session_affinity": pb.ROUTING_POLICY_SESSION_AFFINITY,
    "image_affinity": pb.ROUTING_POLICY_IMAGE_AFFINITY,
}
_FINISH = {"stop": pb.FINISH_REASON_STOP, "length": pb.FINISH_REASON_LENGTH, "degraded": pb.FINISH_REASON_DEGRADED}
_STATE = {
    BatchState.QUEUED: pb.BATCH_STATE_QUEUED,
    BatchState.RUNNING: pb.BATCH_STATE_RUNNING,
    BatchState.COMPLETED: pb.BATCH_STATE_COMPLETED,
    BatchState.CANCELED: pb.BATCH_STATE_CANCELED,
}
_ITEM = {
    ItemStatus.PENDING: pb.ITEM_STATUS_PENDING,
    ItemStatus.RUNNING: pb.ITEM_STATUS_PENDING,
    ItemStatus.SUCCEEDED: pb.ITEM_STATUS_SUCCEEDED,
    ItemStatus.FAILED: pb.ITEM_STATUS_FAILED,
    ItemStatus.CANCELED: pb.ITEM_STATUS_CANCELED,
}


def timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


def _ms(milliseconds: float) -> duration_pb2.Duration:
    return duration(milliseconds / 1e3)


def detection_pb(d: Detection) -> pb.Detection:
    return pb.Detection(
        roadwork_probability=d.probability,
        verdict=pb.VERDICT_ROADWORK if d.roadwork else pb.VERDICT_NO_ROADWORK,
        votes=[
            pb.DetectorVote(
                detector=v.detector,
                roadwork=v.roadwork,
                confidence=v.confidence,
                weight=v.weight,
                status=_VOTE[v.status],
                error=v.error,
                latency=_ms(v.latency_ms),
                boxes=[
                    pb.Box(
                        class_name=b.class_name,
                        confidence=b.confidence,
                        x1=b.xyxy[0],
                        y1=b.xyxy[1],
                        x2=b.xyxy[2],
                        y2=b.xyxy[3],
                        roadwork_evidence=b.evidence,
                    )
                    for b in v.boxes
                ],
            )
            for v in d.votes
        ],
        image_sha256=d.image_sha256,
        image_width=d.width,
        image_height=d.height,
        cached=d.cached,
        latency=_ms(d.latency_ms),
        notices=list(d.notices),
        roadwork_vote_share=d.yes_share,
        vote_confidence=d.vote_confidence,
        raw_score=d.raw_score,
        quorum_met=d.quorum_met,
    )


def route_pb(r: Route) -> pb.Route:
    return pb.Route(
        kind=_KIND[r.kind],
        pool=r.pool,
        engine=_ENGINE.get(r.engine, pb.ENGINE_UNSPECIFIED),
        replica=r.replica,
        model=r.model,
        fallback_from=list(r.fallback_from),
        migrations=[
            pb.Migration(
                from_replica=m.from_replica,
                to_pool=m.to_pool,
                to_replica=m.to_replica,
                tokens_kept=m.tokens_kept,
                chars_kept=m.chars_kept,
            )
            for m in r.migrations
        ],
    )


def usage_pb(u: Usage) -> pb.Usage:
    return pb.Usage(prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens, cached_tokens=u.cached_tokens)


def cost_pb(c: Cost) -> pb.Cost:
    return pb.Cost(prompt_usd=c.prompt_usd, completion_usd=c.completion_usd, total_usd=c.total_usd)


def answer_format(value: int, field: str = "format") -> AnswerFormat:
    """The domain format; an enum value this server does not know is the client's error."""
    if value not in _FORMAT:
        raise OptionOutOfRange(f"{field} {value} is not an AnswerFormat value this server knows", field=field)
    return _FORMAT[value]  # type: ignore[index]


def image_sent_pb(i: ImageSent) -> pb.ImageSent:
    return pb.ImageSent(
        width=i.width,
        height=i.height,
        image_tokens=i.tokens,
        image_tokens_reported=i.tokens_reported,
        bytes=i.bytes,
        resized=i.resized,
        source_width=i.source_width,
        source_height=i.source_height,
    )


def verdict_pb(v: Verdict) -> pb.AnswerVerdict:
    m = v.model
    return pb.AnswerVerdict(
        roadwork=m.roadwork,
        active=m.active,
        objects=[pb.ObjectCount(type=t, count=n) for t, n in m.objects],
        lanes_affected=m.lanes_affected,
        confidence=m.confidence,
        merged_probability=v.merged_probability,
        merged_roadwork=v.merged_roadwork,
        agrees_with_detection=v.agrees_with_detection,
    )


def ask_input(req: pb.AskRequest, request_id: str) -> AskInput:
    return AskInput(
        question=req.question,
        image=req.image,
        session_id=req.session_id,
        open_session=req.open_session,
        max_tokens=req.generation.max_tokens,
        temperature=req.generation.temperature if req.generation.HasField("temperature") else None,
        strict=req.strict,
        request_id=request_id,
        format=answer_format(req.format),
    )


def progress_pb(event: ProgressEvent) -> pb.AskProgressEvent:
    if isinstance(event, Queued):
        return pb.AskProgressEvent(
            queued=pb.QueuedProgress(pool=event.pool, replica=event.replica, position=event.position)
        )
    if isinstance(event, Dispatched):
        return pb.AskProgressEvent(
            dispatched=pb.DispatchedProgress(pool=event.pool, replica=event.replica, attempt=event.attempt)
        )
    if isinstance(event, Retrying):
        retry = pb.RetryingProgress(
            pool=event.pool, replica=event.replica, reason=event.reason, next_attempt=event.next_attempt
        )
        return pb.AskProgressEvent(retrying=retry)
    back = pb.FallingBackProgress(from_pool=event.from_pool, to_pool=event.to_pool, reason=event.reason)
    return pb.AskProgressEvent(falling_back=back)


def ask_event_pb(event: AskEvent) -> pb.AskResponse:
    if isinstance(event, (Queued, Dispatched, Retrying, FallingBack)):
        return pb.AskResponse(progress=progress_pb(event))
    if isinstance(event, DetectionEvent):
        return pb.AskResponse(
            detected=pb.AskDetectionEvent(detection=detection_pb(event.detection), session_id=event.session_id)
        )
    if isinstance(event, DeltaEvent):
        return pb.AskResponse(delta=pb.AskDeltaEvent(text=event.text))
    return pb.AskResponse(done=done_pb(event))


def done_pb(e: DoneEvent) -> pb.AskDoneEvent:
    msg = pb.AskDoneEvent(
        answer=e.answer,
        route=route_pb(e.route),
        usage=usage_pb(e.usage),
        cost=cost_pb(e.cost),
        finish_reason=_FINISH.get(e.finish_reason, pb.FINISH_REASON_UNSPECIFIED),
        degraded=e.degraded,
        notices=list(e.notices),
        session_id=e.session_id,
        detection_time=_ms(e.detection_ms),
        time_to_first_token=_ms(e.ttft_ms),
        total_time=_ms(e.total_ms),
    )
    if e.image is not None:
        msg.image.CopyFrom(image_sent_pb(e.image))
    if e.verdict is not None:
        msg.verdict.CopyFrom(verdict_pb(e.verdict))
    return msg


def batch_options(o: pb.BatchOptions) -> BatchOptions:
    return BatchOptions(
        default_question=o.default_question,
        display_name=o.display_name,
        max_tokens=o.generation.max_tokens,
        temperature=o.generation.temperature if o.generation.HasField("temperature") else None,
        detect_only=o.detect_only,
        format=answer_format(o.format, "options.format"),
        item_timeout_s=_seconds(o.item_timeout, "options.item_timeout") if o.HasField("item_timeout") else 0.0,
    )


def session_ttl(req: pb.CreateSessionRequest) -> int:
    """CreateSessionRequest.ttl in whole seconds (0 = the server's default); negative is the client's error."""
    seconds = _seconds(req.ttl, "ttl") if req.HasField("ttl") else 0.0
    if seconds < 0:
        raise OptionOutOfRange(f"ttl {seconds} s is negative", field="ttl", metadata={"min": "0s"})
    return int(seconds)


def _seconds(d: duration_pb2.Duration, name: str) -> float:
    """A google.protobuf.Duration in seconds; one protobuf refuses (nanos out of range...) is INVALID_ARGUMENT."""
    try:
        return float(d.ToTimedelta().total_seconds())
    except (ValueError, OverflowError) as exc:
        raise OptionOutOfRange(f"{name} is not a valid duration: {exc}", field=name) from exc


def batch_item(i: pb.BatchItem) -> BatchItemInput:
    return BatchItemInput(image=i.image, question=i.question, item_id=i.item_id)


def job_pb(j: JobView) -> pb.BatchJob:
    return pb.BatchJob(
        job_id=j.job_id,
        state=_STATE[j.state],
        display_name=j.display_name,
        total=j.total,
        pending=j.pending,
        succeeded=j.succeeded,
        failed=j.failed,
        canceled=j.canceled,
        created_at=timestamp(j.created),
        updated_at=timestamp(j.updated),
        detect_only=j.detect_only,
    )


PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 50, 1000
_STATE_IN = {v: k for k, v in _STATE.items()}


def list_batches(req: pb.ListBatchesRequest) -> tuple[int, tuple[float, str] | None, BatchState | None]:
    """ListBatches' page size, cursor (from page_token) and state filter; bad values are the client's error."""
    if req.page_size > PAGE_SIZE_MAX:
        raise OptionOutOfRange(
            f"page_size {req.page_size} is over {PAGE_SIZE_MAX}",
            field="page_size",
            metadata={"max": str(PAGE_SIZE_MAX)},
        )
    if req.state != pb.BATCH_STATE_UNSPECIFIED and req.state not in _STATE_IN:
        raise OptionOutOfRange(f"state {req.state} is not a BatchState value this server knows", field="state")
    state = _STATE_IN.get(req.state)
    cursor = _cursor(req.page_token, req.state) if req.page_token else None
    return req.page_size or PAGE_SIZE_DEFAULT, cursor, state


def page_token(cursor: tuple[float, str] | None, state: int) -> str:
    """The opaque next_page_token for a cursor ("" when there is no next page); it carries the state filter."""
    if cursor is None:
        return ""
    raw = json.dumps({"created": cursor[0], "job_id": cursor[1], "state": state}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _cursor(token: str, state: int) -> tuple[float, str]:
    bad = "page_token is not a next_page_token from ListBatches with the same state filter"
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        created, job_id, token_state = float(data["created"]), str(data["job_id"]), int(data["state"])
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise MalformedRequest(bad, field="page_token") from exc
    if token_state != state:
        raise MalformedRequest(bad, field="page_token")
    return created, job_id


def item_result_pb(r: ItemResult) -> pb.BatchItemResult:
    msg = pb.BatchItemResult(
        index=r.index,
        item_id=r.item_id,
        status=_ITEM[r.status],
        answer=r.answer,
        usage=usage_pb(r.usage),
        cost=cost_pb(r.cost),
        degraded=r.degraded,
    )
    if r.detection is not None:
        msg.detection.CopyFrom(detection_pb(r.detection))
    if r.route is not None:
        msg.route.CopyFrom(route_pb(r.route))
    if r.error_code:
        msg.error.CopyFrom(item_status_pb(r.error_code, r.error_message, r.error_reason))
    if r.verdict is not None:
        msg.verdict.CopyFrom(verdict_pb(r.verdict))
    if r.image is not None:
        msg.image.CopyFrom(image_sent_pb(r.image))
    return msg


_M = TypeVar("_M", pb.PoolStatus, pb.ReplicaStatus)
_BREAKER = {
    State.CLOSED: pb.BREAKER_STATE_CLOSED,
    State.OPEN: pb.BREAKER_STATE_OPEN,
    State.HALF_OPEN: pb.BREAKER_STATE_HALF_OPEN,
}


def _with_breaker(msg: _M, b: CircuitBreaker) -> _M:
    msg.breaker = _BREAKER[b.state]
    msg.breaker_retry_in.CopyFrom(duration(round(b.retry_in_s(), 3)))
    return msg


def _replica_pb(r: Replica, pools: list[str]) -> pb.ReplicaStatus:
    msg = pb.ReplicaStatus(
        name=r.name,
        healthy=r.healthy,
        in_flight=r.slots.in_flight,
        queued_interactive=r.slots.queued(True),
        queued_batch=r.slots.queued(False),
        load=r.load,
        bulk_in_flight=r.slots.batch_in_flight,
        bulk_window=r.slots.batch_window(),
        pools=pools,
    )
    return _with_breaker(msg, r.breaker)


def status_pb(pools: dict[str, Pool], routing: RoutingConfig, serving: bool) -> pb.GetStatusResponse:
    """The pools, their replicas (each once, however many pools share it) and breakers, and the routing table."""
    out = pb.GetStatusResponse(serving=serving)
    users: dict[int, tuple[Replica, list[str]]] = {}
    for pool in pools.values():
        msg = pb.PoolStatus(
            name=pool.name,
            engine=_ENGINE[pool.config.engine],
            policy=_POLICY[pool.config.policy],
            replicas=[r.name for r in pool.replicas],
        )
        out.pools.append(_with_breaker(msg, pool.breaker))
        for r in pool.replicas:
            users.setdefault(id(r), (r, []))[1].append(pool.name)
    out.replicas.extend(_replica_pb(r, names) for r, names in users.values())
    for kind, kind_pb in _KIND.items():
        out.routing.append(pb.RoutingRule(kind=kind_pb, pools=routing.pools_for(kind.value)))
    return out
