"""StreetVision miner adapter: the `load_model()` / `__call__(PIL.Image) -> float` interface of the
subnet's reference miner, answered by the router's `Detect` over gRPC.

    from router.cli.streetvision import RouterRoadworkDetector
    detector = RouterRoadworkDetector("127.0.0.1:50051")
    detector.load_model()
    p = detector(pil_image)          # always a float in [0, 1]

It never raises and never returns a value outside [0, 1]: when the router is unreachable, too slow
(`timeout_s`, default 8 s, inside the validators' 9 s budget) or rejects the image, it returns
`fallback` (default 0.5, which StreetVision rounds to "none") and logs why.
"""

from __future__ import annotations

import io
import logging
import math

import grpc
from PIL import Image

from router._proto.roadwork.v1 import router_pb2 as pb
from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class RouterRoadworkDetector:
    """A StreetVision `FeatureDetector`-style callable backed by roadwork-router."""

    def __init__(self, address: str = "127.0.0.1:50051", *, timeout_s: float = 8.0, fallback: float = 0.5) -> None:
        if not 0.0 <= fallback <= 1.0:
            raise ValueError("fallback must be in [0, 1]")
        self.address = address
        self.timeout_s = timeout_s
        self.fallback = fallback
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.RouterServiceStub | None = None

    def load_model(self) -> None:
        """Open the channel and wait (up to `timeout_s`) for the router; unreachable is logged, not raised."""
        self._channel = grpc.insecure_channel(self.address, options=[("grpc.max_send_message_length", 64 << 20)])
        self._stub = pb_grpc.RouterServiceStub(self._channel)  # type: ignore[no-untyped-call]
        try:
            grpc.channel_ready_future(self._channel).result(timeout=self.timeout_s)
        except grpc.FutureTimeoutError:
            log.warning(
                "roadwork-router at %s is not reachable yet; answering %.2f until it is", self.address, self.fallback
            )

    def __call__(self, image: Image.Image) -> float:
        """P(roadwork) for one image, always in [0, 1]."""
        if self._stub is None:
            self.load_model()
        assert self._stub is not None
        buf = io.BytesIO()
        try:
            image.convert("RGB").save(buf, "JPEG", quality=95)
            resp = self._stub.Detect(pb.DetectRequest(image=buf.getvalue()), timeout=self.timeout_s)
        except grpc.RpcError as exc:
            log.warning("Detect failed (%s: %s); answering %.2f", exc.code().name, exc.details(), self.fallback)
            return self.fallback
        except (OSError, ValueError) as exc:
            log.warning("image could not be encoded (%s); answering %.2f", exc, self.fallback)
            return self.fallback
        p = float(resp.detection.roadwork_probability)
        return min(1.0, max(0.0, p)) if math.isfinite(p) else self.fallback

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
