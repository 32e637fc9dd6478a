"""The image stage: fit each image to the pool's pixel budget before it is encoded for the engine.

Qwen2-VL-family processors resize every image to sides that are multiples of `pixel_multiple`
(patch x merge: 28 for Qwen2/2.5-VL, 32 for Qwen3-VL) within [min_pixels, max_pixels], then spend
one token per multiple x multiple square. The router does the same sum (`fit`): an image inside the
budget is sent as it came (the engine snaps it by a few pixels); one outside is resized here to the
fitted size, aspect kept, and sent as a JPEG, so a 12 MP frame never travels or turns into 15,000
tokens. Prepared images are kept in a small LRU by (digest, budget): a session's follow-ups replay
the same bytes (which the engines' prefix caches need) without resizing again.
"""

from __future__ import annotations

import asyncio
import io
import math
from collections import OrderedDict
from dataclasses import dataclass, replace

from PIL import Image

from engines.base import GenerationRequest, ImagePart, Message
from router.errors import ImageAspectRatio

MAX_ASPECT = 200  # Qwen2-VL processors refuse images more elongated than this
JPEG_QUALITY = 90


@dataclass(frozen=True)
class PixelBudget:
    """A pool's image size bounds, in pixels, and the multiple its model's sides snap to."""

    min_pixels: int
    max_pixels: int
    multiple: int = 28

    def holds(self, width: int, height: int) -> bool:
        """Whether an image of this size is inside the budget (and travels as it came)."""
        return self.min_pixels <= width * height <= self.max_pixels


@dataclass(frozen=True)
class ImageSent:
    """What reached the model: the image's size as sent, its tokens, its bytes, and whether it was resized."""

    width: int
    height: int
    tokens: int  # the router's estimate; replaced by the engine's count where it reports one
    bytes: int
    resized: bool
    source_width: int
    source_height: int
    tokens_reported: bool = False

    def with_engine_tokens(self, reported: int) -> ImageSent:
        """The engine's own image-token count, when it gave one."""
        return replace(self, tokens=reported, tokens_reported=True) if reported else self


def fit(width: int, height: int, budget: PixelBudget) -> tuple[int, int]:
    """(width, height) the model's processor would use: multiples of `budget.multiple`, aspect kept,
    area within the budget (Qwen2-VL's `smart_resize`)."""
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageAspectRatio(f"image is {width}x{height}: its aspect ratio is over {MAX_ASPECT}:1", field="image")
    f = budget.multiple
    w, h = round(width / f) * f, round(height / f) * f
    if w * h > budget.max_pixels:
        beta = math.sqrt(width * height / budget.max_pixels)
        w, h = max(f, math.floor(width / beta / f) * f), max(f, math.floor(height / beta / f) * f)
    elif w * h < budget.min_pixels:
        beta = math.sqrt(budget.min_pixels / (width * height))
        w, h = math.ceil(width * beta / f) * f, math.ceil(height * beta / f) * f
    return w, h


def tokens_for(width: int, height: int, multiple: int) -> int:
    """Image tokens for an image already fitted (sides are multiples of `multiple`)."""
    return (width // multiple) * (height // multiple)


def _resize(image: ImagePart, size: tuple[int, int]) -> bytes:
    """Decode (JPEG: at reduced DCT scale when that still covers `size`), resize, encode as JPEG."""
    with Image.open(io.BytesIO(image.data)) as img:
        img.draft("RGB", size)
        rgb = img.convert("RGB").resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def fit_image(image: ImagePart, budget: PixelBudget) -> tuple[ImagePart, ImageSent]:
    """The image to send under `budget` (itself when inside it, else resized to the fitted size as a
    JPEG), and what it is. Decodes and encodes when resizing: call it off the event loop."""
    if not image.width or not image.height:
        raise ValueError("ImagePart needs its width and height to be fitted to a budget")
    w, h = fit(image.width, image.height, budget)
    part = image
    if not budget.holds(image.width, image.height):
        part = ImagePart(_resize(image, (w, h)), "image/jpeg", w, h, image.sha256)
    sent = ImageSent(
        width=w,
        height=h,
        tokens=tokens_for(w, h, budget.multiple),
        bytes=len(part.data),
        resized=part is not image,
        source_width=image.width,
        source_height=image.height,
    )
    return part, sent


class ImagePreparer:
    """Fits images to pool budgets (resizing on a worker thread), remembering the last few results."""

    def __init__(self, capacity: int = 32) -> None:
        self._capacity = capacity
        self._done: OrderedDict[tuple[str, PixelBudget], tuple[ImagePart, ImageSent]] = OrderedDict()

    async def prepare(self, image: ImagePart, budget: PixelBudget) -> tuple[ImagePart, ImageSent]:
        """The image to send under `budget`, and what it is."""
        key = (image.sha256, budget)
        if image.sha256 and (hit := self._done.get(key)) is not None:
            self._done.move_to_end(key)
            return hit
        inside = budget.holds(image.width, image.height)  # nothing to decode: no thread hop
        result = fit_image(image, budget) if inside else await asyncio.to_thread(fit_image, image, budget)
        if image.sha256:
            self._done[key] = result
            if len(self._done) > self._capacity:
                self._done.popitem(last=False)
        return result


def image_of(request: GenerationRequest) -> ImagePart | None:
    """The request's image (the router attaches at most one, to the first user turn)."""
    return next((m.image for m in request.messages if m.image is not None), None)


def with_image(request: GenerationRequest, part: ImagePart | None, budget: PixelBudget | None) -> GenerationRequest:
    """`request` with its image replaced by `part` (None: dropped, for text-only pools)."""
    messages = tuple(Message(m.role, m.text, part) if m.image is not None else m for m in request.messages)
    pixels = (budget.min_pixels, budget.max_pixels) if budget is not None else None
    return replace(request, messages=messages, pixel_budget=pixels)
