"""The quick-start demo: an Ask with the bundled sample image, then a follow-up, printed as they stream."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from google.protobuf.duration_pb2 import Duration
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.json_format import MessageToDict

from router._proto.roadwork.v1 import router_pb2 as pb

SAMPLE_IMAGE = Path(__file__).parent.parent / "assets" / "sample_roadwork.jpg"


def _detection_line(d: pb.Detection) -> str:
    votes = ", ".join(
        f"{v.detector}: {'yes' if v.roadwork else 'no'} ({v.confidence:.2f}, {len(v.boxes)} boxes, "
        f"{pb.VoteStatus.Name(v.status)[12:].lower()})"
        for v in d.votes
    )
    return (
        f"[detection] P(roadwork)={d.roadwork_probability:.3f} verdict={pb.Verdict.Name(d.verdict)[8:]} "
        f"cached={str(d.cached).lower()} {_ms(d.latency):.0f} ms; votes: {votes}"
    )


def enum_name(enum: EnumTypeWrapper, value: int) -> str:
    """An enum value's name, lower case, without its type's prefix (ENGINE_VLLM -> vllm)."""
    prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    return enum.Name(value).removeprefix(prefix).lower()


def _ms(d: Duration) -> float:
    return d.ToNanoseconds() / 1e6


def _progress_line(p: pb.AskProgressEvent) -> str:
    """One line for a progress event, e.g. `[queued] vllm http://a:8000, position 2`."""
    which = p.WhichOneof("stage")
    if which == "queued":
        return f"[queued] {p.queued.pool} {p.queued.replica}, position {p.queued.position}"
    if which == "dispatched":
        return f"[dispatched] {p.dispatched.pool} {p.dispatched.replica}, attempt {p.dispatched.attempt}"
    if which == "retrying":
        r = p.retrying
        return f"[retrying] {r.pool} {r.replica} failed ({r.reason}); attempt {r.next_attempt}"
    if which == "falling_back":
        f = p.falling_back
        return f"[falling back] {f.from_pool} -> {f.to_pool}: {f.reason}"
    return f"[progress] {which}"


def print_ask_stream(
    stream: Iterable[pb.AskResponse], *, as_json: bool = False, out: TextIO | None = None
) -> pb.AskDoneEvent:
    """Print each event as it arrives; returns the final event."""
    w = out or sys.stdout
    done = pb.AskDoneEvent()
    answering = False
    for msg in stream:
        which = msg.WhichOneof("event")
        if as_json:
            print(json.dumps(MessageToDict(msg)), file=w, flush=True)
        elif which == "detected":
            d = msg.detected.detection
            print(_detection_line(d), file=w, flush=True)
            if msg.detected.session_id:
                print(f"  session: {msg.detected.session_id}", file=w)
            for n in d.notices:
                print(f"  notice: {n}", file=w)
        elif which == "progress":
            print(f"  {_progress_line(msg.progress)}", file=w, flush=True)
        elif which == "delta":
            if not answering:
                print("[answer] ", end="", file=w, flush=True)
                answering = True
            print(msg.delta.text, end="", file=w, flush=True)
        if which == "done":
            done = msg.done
            if not as_json:
                r, u, c = done.route, done.usage, done.cost
                print(file=w)
                print(
                    f"[done] kind={pb.RequestKind.Name(r.kind)[13:]} pool={r.pool} "
                    f"engine={enum_name(pb.Engine, r.engine)} "
                    f"replica={r.replica} model={r.model} finish={enum_name(pb.FinishReason, done.finish_reason)} "
                    f"degraded={str(done.degraded).lower()}\n"
                    f"       tokens prompt={u.prompt_tokens} completion={u.completion_tokens} cached={u.cached_tokens} "
                    f"cost=${c.total_usd:.6f} detection={_ms(done.detection_time):.0f} ms "
                    f"ttft={_ms(done.time_to_first_token):.0f} ms total={_ms(done.total_time):.0f} ms",
                    file=w,
                    flush=True,
                )
                if done.HasField("image"):
                    print(f"       {_image_line(done.image)}", file=w)
                if done.HasField("verdict"):
                    print(f"       {_verdict_line(done.verdict)}", file=w)
                for n in done.notices:
                    print(f"  notice: {n}", file=w)
    return done


def _image_line(i: pb.ImageSent) -> str:
    how = "resized" if i.resized else "as sent"
    tokens = "engine" if i.image_tokens_reported else "estimated"
    return (
        f"image {i.source_width}x{i.source_height} -> {i.width}x{i.height} ({how}, {i.bytes} bytes), "
        f"{i.image_tokens} image tokens ({tokens})"
    )


def _verdict_line(v: pb.AnswerVerdict) -> str:
    objects = ", ".join(f"{o.count} {o.type}" for o in v.objects) or "none"
    return (
        f"verdict roadwork={str(v.roadwork).lower()} active={str(v.active).lower()} objects: {objects}; "
        f"lanes affected {v.lanes_affected}, confidence {v.confidence:.2f}; merged P={v.merged_probability:.2f} "
        f"({'agrees with' if v.agrees_with_detection else 'differs from'} the detection)"
    )


def run_demo(address: str) -> None:
    """Ask about the sample image (opening a session), a follow-up without the image, then a verdict."""
    from router.cli.client import RouterClient

    client = RouterClient(address)
    print(f"\n=== demo: Ask about {SAMPLE_IMAGE.name} (opens a session) ===", flush=True)
    first = pb.AskRequest(
        image=SAMPLE_IMAGE.read_bytes(),
        question="Is there roadwork here?",
        open_session=True,
        generation=pb.GenerationOptions(max_tokens=32),
    )
    done = print_ask_stream(client.ask(first, timeout=120))
    print("\n=== demo: follow-up in the same session (no image: the session's detections are reused) ===", flush=True)
    follow = pb.AskRequest(
        question="How many lanes are closed?",
        session_id=done.session_id,
        generation=pb.GenerationOptions(max_tokens=32),
    )
    print_ask_stream(client.ask(follow, timeout=120))
    print("\n=== demo: the same image, asking for a structured verdict (ANSWER_FORMAT_VERDICT) ===", flush=True)
    verdict = pb.AskRequest(
        image=SAMPLE_IMAGE.read_bytes(),
        question="Is there roadwork here?",
        format=pb.ANSWER_FORMAT_VERDICT,
        generation=pb.GenerationOptions(max_tokens=128),
    )
    print_ask_stream(client.ask(verdict, timeout=120))
    client.close()
