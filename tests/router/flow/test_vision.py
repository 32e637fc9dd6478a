"""The image stage: budgets computed as the models' processors compute them, resizing, the LRU."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from engines.base import GenerationRequest, ImagePart, Message
from router.errors import InvalidRequest
from router.flow.vision import ImagePreparer, PixelBudget, fit, image_of, tokens_for, with_image

BUDGET = PixelBudget(128 * 28 * 28, 640 * 28 * 28)


def _jpeg(w: int, h: int) -> ImagePart:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (200, 120, 30)).save(out, "JPEG")
    return ImagePart(out.getvalue(), "image/jpeg", w, h, f"sha-{w}x{h}")


def test_fit_is_qwen2_vl_smart_resize() -> None:
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    rng = random.Random(0)
    sizes = [(640, 480), (3840, 2160), (160, 120), (28, 28), (13, 900), (4000, 6000)]
    sizes += [(rng.randint(20, 5000), rng.randint(20, 5000)) for _ in range(300)]
    for w, h in sizes:
        for budget in (BUDGET, PixelBudget(56 * 56, 12845056), PixelBudget(32 * 32 * 4, 32 * 32 * 1024, 32)):
            if max(w, h) / min(w, h) > 200:
                continue
            h_ref, w_ref = smart_resize(h, w, budget.multiple, budget.min_pixels, budget.max_pixels)
            assert fit(w, h, budget) == (w_ref, h_ref), (w, h, budget)


def test_fit_refuses_extreme_aspect_ratios() -> None:
    with pytest.raises(InvalidRequest, match="aspect ratio"):
        fit(10000, 40, BUDGET)


async def test_an_image_inside_the_budget_travels_as_it_came() -> None:
    part = _jpeg(640, 480)
    sent_part, sent = await ImagePreparer().prepare(part, BUDGET)
    assert sent_part is part and not sent.resized
    assert (sent.width, sent.height) == (644, 476) and sent.tokens == 23 * 17 == tokens_for(644, 476, 28)
    assert sent.bytes == len(part.data) and (sent.source_width, sent.source_height) == (640, 480)


@pytest.mark.parametrize(("w", "h"), [(3840, 2160), (100, 80)])
async def test_an_image_outside_the_budget_is_resized_to_the_fitted_size(w: int, h: int) -> None:
    part = _jpeg(w, h)
    new, sent = await ImagePreparer().prepare(part, BUDGET)
    assert sent.resized and new.mime == "image/jpeg" and new.sha256 == part.sha256
    with Image.open(io.BytesIO(new.data)) as img:
        assert img.size == (sent.width, sent.height) == fit(w, h, BUDGET) == (new.width, new.height)
    assert BUDGET.min_pixels <= sent.width * sent.height <= BUDGET.max_pixels
    assert abs(sent.width / sent.height - w / h) < 0.1  # aspect kept
    assert sent.bytes == len(new.data)


async def test_prepared_images_are_reused_by_digest_and_budget() -> None:
    prep = ImagePreparer(capacity=2)
    big = _jpeg(3000, 2000)
    first, _ = await prep.prepare(big, BUDGET)
    again, _ = await prep.prepare(big, BUDGET)
    assert again is first  # a follow-up replays the same bytes without resizing
    other, _ = await prep.prepare(big, PixelBudget(56 * 56, 256 * 28 * 28))
    assert other is not first and len(other.data) < len(first.data)
    await prep.prepare(_jpeg(2000, 3000), BUDGET)  # evicts the oldest
    assert (await prep.prepare(big, BUDGET))[0] is not first


def test_with_image_replaces_or_drops_the_image_and_sets_the_budget() -> None:
    part = _jpeg(64, 64)
    request = GenerationRequest((Message("system", "s"), Message("user", "q", part)), max_tokens=4, temperature=0)
    assert image_of(request) is part
    text_only = with_image(request, None, None)
    assert image_of(text_only) is None and text_only.pixel_budget is None
    other = _jpeg(32, 32)
    swapped = with_image(request, other, BUDGET)
    assert image_of(swapped) is other and swapped.pixel_budget == (BUDGET.min_pixels, BUDGET.max_pixels)
    assert [m.text for m in swapped.messages] == ["s", "q"]
