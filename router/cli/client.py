"""A small Python client for the router's gRPC API (used by the CLI and the demo)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
from google.rpc import error_details_pb2  # also registers the detail types, for MessageToDict
from grpc_status import rpc_status

from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def error_reason(err: grpc.RpcError) -> str:
    """The failed call's ErrorInfo.reason (an ErrorReason name less its prefix), "" when it has none."""
    try:
        status = rpc_status.from_call(err)
    except ValueError:  # details that disagree with the call's own status: not the router's
        return ""
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


class RouterClient:
    """Blocking client; every call takes an optional deadline in seconds."""

    def __init__(self, address: str, max_message_bytes: int = 64 * 1024 * 1024) -> None:
        self.channel = grpc.insecure_channel(
            address,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
            ],
        )
        self.stub = pb_grpc.RouterServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def detect(self, image: bytes, timeout: float | None = None) -> pb.DetectResponse:
        return self.stub.Detect(pb.DetectRequest(image=image), timeout=timeout)  # type: ignore[no-any-return]

    def ask(self, request: pb.AskRequest, timeout: float | None = None) -> Iterator[pb.AskResponse]:
        return self.stub.Ask(request, timeout=timeout)  # type: ignore[no-any-return]

    def submit_dir(self, directory: Path, options: pb.BatchOptions, on_item: object = None) -> pb.SubmitBatchResponse:
        """Stream every image file under `directory` (sorted) as one job; `on_item(path)` per item."""
        files = sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)

        def messages() -> Iterator[pb.SubmitBatchRequest]:
            yield pb.SubmitBatchRequest(options=options)
            for path in files:
                yield pb.SubmitBatchRequest(
                    item=pb.BatchItem(image=path.read_bytes(), item_id=str(path.relative_to(directory)))
                )
                if callable(on_item):
                    on_item(path)

        return self.stub.SubmitBatch(messages())  # type: ignore[no-any-return]

    def close(self) -> None:
        self.channel.close()
