"""Several YOLO members on one device run as one step, for speed (issue 3's GPU goal).

Per batch of images: on a GPU, one batched nvjpeg decode of the JPEGs that arrive undecoded
(`EncodedJpeg`: the router then skips its CPU decode; anything else is decoded on the CPU), one
letterbox per distinct input size and image shape (done on the device), then each
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

from detectors.base import Box, DetectorOutput, EncodedJpeg, Picture, UndecodableImage, WeightsError, decoded
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
        gpu_decode: bool = True,
    ) -> None:
        self.members = tuple(members)
        self._device_name = device
        self._cuda_graphs = cuda_graphs
        self.decodes_jpeg = gpu_decode and device.startswith("cuda")
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

    def _pixels(self, images: list[Picture]) -> list[Any]:
        """Each image as a uint8 (3, h, w) tensor on the device, or the UndecodableImage it raised.

        JPEGs that arrive undecoded go through one batched nvjpeg call; one it refuses (CMYK, a
        corrupt stream) is decoded on the CPU instead, where PIL names what is wrong with it."""
        torch = self._torch
        out: list[Any] = [None] * len(images)
        jpegs = [i for i, p in enumerate(images) if isinstance(p, EncodedJpeg)] if self.decodes_jpeg else []
        for i, t in zip(jpegs, self._nvjpeg([images[i] for i in jpegs]), strict=True):
            out[i] = t
        rest = [i for i, t in enumerate(out) if t is None]
        for i, p in zip(rest, decoded([images[i] for i in rest]), strict=True):
            out[i] = (
                p
                if isinstance(p, UndecodableImage)
                else torch.from_numpy(np.array(p)).to(self._device).permute(2, 0, 1)
            )
        return out

    def _nvjpeg(self, jpegs: list[Picture]) -> list[Any]:
        """Decoded (3, h, w) uint8 tensors on the GPU, None for each JPEG nvjpeg refused."""
        if not jpegs:
            return []
        from torchvision.io import ImageReadMode, decode_jpeg

        torch = self._torch
        data = [torch.frombuffer(bytearray(p.data), dtype=torch.uint8) for p in jpegs if isinstance(p, EncodedJpeg)]
        try:  # one call for the batch; it returns nothing when any image fails
            return list(decode_jpeg(data, mode=ImageReadMode.RGB, device=self._device))
        except RuntimeError:
            out = []
            for d in data:
                try:
                    out.append(decode_jpeg(d, mode=ImageReadMode.RGB, device=self._device))
                except RuntimeError:
                    out.append(None)
            return out

    def _letterbox(self, pixels: list[Any], size: int, square: bool) -> tuple[Any, list[tuple[float, float, float]]]:
        """Images (uint8 (3, h, w) tensors) resized to fit size x size (aspect kept, grey pad), plus
        (ratio, left, top) each; images of one shape are resized together, in one call.

        `square` pads to exactly size x size (the shape a CUDA graph was captured for); otherwise
        only up to the batch's largest multiple of 32, as `predict()` does (less work on a CPU)."""
        torch = self._torch
        fits = [min(size / t.shape[1], size / t.shape[2]) for t in pixels]
        shapes = [
            (max(1, round(t.shape[1] * r)), max(1, round(t.shape[2] * r))) for t, r in zip(pixels, fits, strict=True)
        ]
        hh = size if square else min(size, -(-max(s[0] for s in shapes) // 32) * 32)
        ww = size if square else min(size, -(-max(s[1] for s in shapes) // 32) * 32)
        out = torch.full((len(pixels), 3, hh, ww), PAD, dtype=self._dtype, device=self._device)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, t in enumerate(pixels):
            groups.setdefault((t.shape[1], t.shape[2]), []).append(i)
        geometry: list[tuple[float, float, float]] = [(1.0, 0.0, 0.0)] * len(pixels)
        for (h, w), idx in groups.items():
            r, (nh, nw) = fits[idx[0]], shapes[idx[0]]
            x = torch.stack([pixels[i] for i in idx]).float()
            if (nh, nw) != (h, w):
                x = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
            top, left = round((hh - nh) / 2 - 0.1), round((ww - nw) / 2 - 0.1)
            rows: Any = slice(None) if len(idx) == len(pixels) else idx
            out[rows, :, top : top + nh, left : left + nw] = (x / 255).to(self._dtype)
            for i in idx:
                geometry[i] = (r, float(left), float(top))
        return out, geometry

    def run(self, images: list[Picture]) -> list[list[DetectorOutput | Exception]]:
        """Every member's output for every image: result[image][member] (each member's entry the
        UndecodableImage for an image that could not be decoded)."""
        with self._torch.inference_mode():
            pixels = self._pixels(images)
        good = [i for i, p in enumerate(pixels) if not isinstance(p, UndecodableImage)]
        results = iter(self._run([pixels[i] for i in good], [images[i].size for i in good]) if good else [])
        return [[p] * len(self._m) if isinstance(p, UndecodableImage) else next(results) for p in pixels]

    def _run(self, pixels: list[Any], sizes: list[tuple[int, int]]) -> list[list[DetectorOutput | Exception]]:
        torch = self._torch
        n = len(pixels)
        live = [m for m in self._m if m.module is not None]
        inputs: dict[int, tuple[Any, list[tuple[float, float, float]]]] = {}
        outs: list[Any] = []
        graphs = self._device.type == "cuda" and self._cuda_graphs and n <= BUCKETS[-1]
        with torch.inference_mode():
            for size in {m.detector.spec.imgsz for m in live}:
                inputs[size] = self._letterbox(pixels, size, square=graphs)
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
        return self._assemble(sizes, found, inputs)

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
        sizes: list[tuple[int, int]],
        found: list[Any],
        inputs: dict[int, tuple[Any, list[tuple[float, float, float]]]],
    ) -> list[list[DetectorOutput | Exception]]:
        per: dict[tuple[int, int], list[Box]] = {}
        for k_f, i_f, x1, y1, x2, y2, conf, cls in found:
            k, i = int(k_f), int(i_f)
            m = self._m[k]
            r, left, top = inputs[m.detector.spec.imgsz][1][i]
            w, h = sizes[i]
            name = m.names.get(int(cls), str(int(cls)))
            evidence = m.detector.spec.evidence_classes
            xyxy = clip_box(((x1 - left) / r, (y1 - top) / r, (x2 - left) / r, (y2 - top) / r), w, h)
            per.setdefault((k, i), []).append(Box(name, float(conf), xyxy, not evidence or name in evidence))
        result: list[list[DetectorOutput | Exception]] = []
        for i in range(len(sizes)):
            row: list[DetectorOutput | Exception] = []
            for m in self._m:
                if m.module is None:
                    row.append(m.error or RuntimeError(f"detector '{m.detector.name}' is not loaded"))
                    continue
                boxes = sorted(per.get((m.index, i), []), key=lambda b: -b.confidence)[:300]
                row.append(DetectorOutput(boxes=tuple(boxes)))
            result.append(row)
        return result
