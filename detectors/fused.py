"""Several YOLO members on one device run as one step, for speed (issue 3's GPU goal).

Per batch of images: one letterbox per distinct input size (done on the device), then each
member's forward pass, then one NMS call for every member and image together, then one copy
back to the host. On a GPU each member's forward (with its box decoding) is a CUDA graph per
batch-size bucket, replayed on the member's own CUDA stream in fp16: Python launches one graph
per member instead of hundreds of kernels, and the members' kernels overlap on the GPU. On the
CPU the same path runs eagerly in fp32.

With CUDA graphs, images are letterboxed to a fixed imgsz x imgsz square (as exported engines
are) rather than `predict()`'s minimal "rect" padding; boxes agree with `predict()` to within a
few pixels and confidences to a few hundredths (tests/detectors/test_fused.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from detectors.base import Box, DetectorOutput, WeightsError
from detectors.ultralytics import UltralyticsDetector, clip_box, load_yolo

BUCKETS = (1, 2, 4, 8, 16)
# One CUDA graph capture at a time in this process: runners on other GPUs load on their own threads,
# and a capture fails ("operation not permitted when stream is capturing") if another thread's
# work lands in it. Captures happen only at start-up, so the lock costs nothing later.
_CAPTURE_LOCK = threading.Lock()
PAD = 114 / 255  # ultralytics' letterbox grey


@dataclass
class _Member:
    detector: UltralyticsDetector
    index: int  # position in the runner: the first column of its candidate rows
    module: Any = None
    names: dict[int, str] = field(default_factory=dict)
    error: Exception | None = None
    stream: Any = None
    graphs: dict[int, tuple[Any, Any, Any]] = field(default_factory=dict)  # bucket -> graph, input, output
    keep: list[Any] = field(default_factory=list)  # tensors a captured graph reads (head anchors)


class FusedRunner:
    """Runs `members` (YOLO .pt/.yaml weights, one device) together; call load() and run() on one thread."""

    def __init__(
        self,
        members: list[UltralyticsDetector],
        device: str,
        *,
        cuda_graphs: bool = True,
        max_batch: int = 16,
        iou: float = 0.7,
    ) -> None:
        self.members = tuple(members)
        self._device_name = device
        self._cuda_graphs = cuda_graphs
        self._max_batch = max_batch
        self._iou = iou
        self._m = [_Member(d, k) for k, d in enumerate(members)]
        self._torch: Any = None
        self._device: Any = None
        self._dtype: Any = None

    def load(self) -> None:
        import torch

        self._torch = torch
        self._device = torch.device(self._device_name)
        cuda = self._device.type == "cuda"
        self._dtype = torch.float16 if cuda else torch.float32
        for m in self._m:
            try:
                model = load_yolo(m.detector.spec)
                module = model.model.fuse().to(self._device).eval()
                m.module = module.half() if cuda else module.float()
                m.names = {int(k): str(v) for k, v in model.names.items()}
                if cuda:
                    m.stream = torch.cuda.Stream(self._device)  # type: ignore[no-untyped-call]
            except WeightsError:
                raise
            except Exception as exc:  # this member is left out of every vote, with this reason
                m.error = exc
        self._capture_all()

    def _forward(self, m: _Member, x: Any) -> Any:
        """Model forward and per-anchor decoding into candidate rows (B, A, 8):
        [member, image, x1, y1, x2, y2, conf, class], conf = -1 below the member's threshold."""
        torch = self._torch
        pred = m.module(x)
        pred = (pred[0] if isinstance(pred, tuple | list) else pred).transpose(1, 2).float()  # (B, A, 4 + nc)
        xy, wh = pred[..., :2], pred[..., 2:4] / 2
        conf, cls = pred[..., 4:].max(-1, keepdim=True)
        conf = torch.where(conf > m.detector.spec.conf, conf, -1.0)
        b, a = conf.shape[:2]
        image = torch.arange(b, device=x.device, dtype=torch.float32).view(b, 1, 1).expand(b, a, 1)
        member = torch.full_like(conf, float(m.index))
        return torch.cat([member, image, xy - wh, xy + wh, conf, cls.float()], -1)

    def _graph(self, m: _Member, bucket: int) -> tuple[Any, Any, Any]:
        """The member's CUDA graph for a batch-size bucket, captured on first use."""
        if bucket in m.graphs:
            return m.graphs[bucket]
        torch, size = self._torch, m.detector.spec.imgsz
        static_in = torch.full((bucket, 3, size, size), PAD, dtype=self._dtype, device=self._device)
        with _CAPTURE_LOCK:
            with torch.cuda.stream(m.stream), torch.inference_mode():
                for _ in range(3):  # warm up (allocations, cuDNN choices) before capture
                    self._forward(m, static_in)
                head = m.module.model[-1]
                m.keep += [getattr(head, "anchors", None), getattr(head, "strides", None)]
            m.stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            # thread_local: other threads may use CUDA meanwhile (e.g. a predict() member's warm-up).
            capture = torch.cuda.graph(graph, stream=m.stream, capture_error_mode="thread_local")
            with torch.inference_mode(), capture:
                static_out = self._forward(m, static_in)
        m.graphs[bucket] = (graph, static_in, static_out)
        return m.graphs[bucket]

    def _capture_all(self) -> None:
        """Capture every bucket's graph at load, so no request pays for a capture."""
        if self._device.type == "cuda" and self._cuda_graphs:
            for m in self._m:
                for b in BUCKETS:
                    if m.module is not None and (b == 1 or b <= self._max_batch):
                        self._graph(m, b)

    def _letterbox(
        self, images: list[Image.Image], size: int, square: bool
    ) -> tuple[Any, list[tuple[float, float, float]]]:
        """Images resized to fit size x size (aspect kept, grey pad), plus (ratio, left, top) each.

        `square` pads to exactly size x size (the shape a CUDA graph was captured for); otherwise
        only up to the batch's largest multiple of 32, as `predict()` does (less work on a CPU)."""
        torch = self._torch
        arrays = [np.array(im.convert("RGB") if im.mode != "RGB" else im) for im in images]
        fits = [min(size / a.shape[0], size / a.shape[1]) for a in arrays]
        shapes = [
            (max(1, round(a.shape[0] * r)), max(1, round(a.shape[1] * r))) for a, r in zip(arrays, fits, strict=True)
        ]
        hh = size if square else min(size, -(-max(s[0] for s in shapes) // 32) * 32)
        ww = size if square else min(size, -(-max(s[1] for s in shapes) // 32) * 32)
        out = torch.full((len(images), 3, hh, ww), PAD, dtype=self._dtype, device=self._device)
        geometry = []
        for i, (arr, r, (nh, nw)) in enumerate(zip(arrays, fits, shapes, strict=True)):
            h, w = arr.shape[:2]
            t = torch.from_numpy(arr).to(self._device, non_blocking=True).permute(2, 0, 1)[None].float()
            if (nh, nw) != (h, w):
                t = torch.nn.functional.interpolate(t, size=(nh, nw), mode="bilinear", align_corners=False)
            top, left = round((hh - nh) / 2 - 0.1), round((ww - nw) / 2 - 0.1)
            out[i, :, top : top + nh, left : left + nw] = (t[0] / 255).to(self._dtype)
            geometry.append((r, float(left), float(top)))
        return out, geometry

    def run(self, images: list[Image.Image]) -> list[list[DetectorOutput | Exception]]:
        """Every member's output for every image: result[image][member]."""
        torch = self._torch
        n = len(images)
        live = [m for m in self._m if m.module is not None]
        inputs: dict[int, tuple[Any, list[tuple[float, float, float]]]] = {}
        outs: list[Any] = []
        graphs = self._device.type == "cuda" and self._cuda_graphs and n <= BUCKETS[-1]
        with torch.inference_mode():
            for size in {m.detector.spec.imgsz for m in live}:
                inputs[size] = self._letterbox(images, size, square=graphs)
            main = torch.cuda.current_stream(self._device) if self._device.type == "cuda" else None
            for m in live:
                x = inputs[m.detector.spec.imgsz][0]
                if main is not None and graphs:
                    bucket = next(b for b in BUCKETS if b >= n)
                    graph, static_in, static_out = self._graph(m, bucket)
                    m.stream.wait_stream(main)
                    with torch.cuda.stream(m.stream):
                        static_in[:n].copy_(x)
                        graph.replay()
                        outs.append(static_out[:n].reshape(-1, 8))  # read before this member's next replay
                elif main is not None:
                    m.stream.wait_stream(main)
                    with torch.cuda.stream(m.stream):
                        outs.append(self._forward(m, x).reshape(-1, 8))
                else:
                    outs.append(self._forward(m, x).reshape(-1, 8))
            if main is not None:
                for m in live:
                    main.wait_stream(m.stream)
            found = self._nms(outs, n) if live else []
        return self._assemble(images, found, inputs)

    def _nms(self, outs: list[Any], n: int) -> list[Any]:
        """One batched NMS over every (member, image, class) group of candidate rows."""
        from torchvision.ops import batched_nms

        rows = self._torch.cat(outs)
        cand = rows[rows[:, 6] > 0]
        if not len(cand):
            return []
        groups = ((cand[:, 0] * n + cand[:, 1]) * 4096 + cand[:, 7]).long()
        kept = batched_nms(cand[:, 2:6], cand[:, 6], groups, self._iou)
        return list(cand[kept].cpu().tolist())

    def _assemble(
        self,
        images: list[Image.Image],
        found: list[Any],
        inputs: dict[int, tuple[Any, list[tuple[float, float, float]]]],
    ) -> list[list[DetectorOutput | Exception]]:
        per: dict[tuple[int, int], list[Box]] = {}
        for k_f, i_f, x1, y1, x2, y2, conf, cls in found:
            k, i = int(k_f), int(i_f)
            m = self._m[k]
            r, left, top = inputs[m.detector.spec.imgsz][1][i]
            w, h = images[i].size
            name = m.names.get(int(cls), str(int(cls)))
            evidence = m.detector.spec.evidence_classes
            xyxy = clip_box(((x1 - left) / r, (y1 - top) / r, (x2 - left) / r, (y2 - top) / r), w, h)
            per.setdefault((k, i), []).append(Box(name, float(conf), xyxy, not evidence or name in evidence))
        result: list[list[DetectorOutput | Exception]] = []
        for i in range(len(images)):
            row: list[DetectorOutput | Exception] = []
            for m in self._m:
                if m.module is None:
                    row.append(m.error or RuntimeError(f"detector '{m.detector.name}' is not loaded"))
                    continue
                boxes = sorted(per.get((m.index, i), []), key=lambda b: -b.confidence)[:300]
                row.append(DetectorOutput(boxes=tuple(boxes)))
            result.append(row)
        return result
