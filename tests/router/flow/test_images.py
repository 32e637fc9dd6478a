"""decode_image with `defer_jpeg`: a JPEG checked from its header and end marker is left for the GPU."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from detectors.base import EncodedJpeg, UndecodableImage, rgb
from router.errors import BadImage
from router.flow.images import check_jpeg, decode_image

LIMITS = {"max_bytes": 1 << 24, "max_pixels": 1 << 24}


def _encoded(fmt: str, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (64, 48), 90).save(buf, fmt)
    return buf.getvalue()


def test_a_jpeg_is_left_undecoded_and_decodes_later() -> None:
    data = _encoded("JPEG")
    image = decode_image(data, defer_jpeg=True, **LIMITS)
    assert isinstance(image.pixels, EncodedJpeg) and image.pixels.size == (64, 48) and image.mime == "image/jpeg"
    assert rgb(image.pixels).size == (64, 48)
    assert isinstance(decode_image(data, **LIMITS).pixels, Image.Image)  # not asked to defer: decoded


@pytest.mark.parametrize("fmt, mode", [("PNG", "RGB"), ("JPEG", "CMYK")])
def test_what_nvjpeg_cannot_take_is_decoded_here(fmt: str, mode: str) -> None:
    image = decode_image(_encoded(fmt, mode), defer_jpeg=True, **LIMITS)
    assert isinstance(image.pixels, Image.Image) and image.pixels.mode == "RGB"


def test_a_truncated_jpeg_is_still_refused_here() -> None:
    data = _encoded("JPEG")
    with pytest.raises(BadImage, match="truncated"):
        decode_image(data[: len(data) - 40], defer_jpeg=True, **LIMITS)


def test_a_corrupt_jpeg_past_the_checks_is_undecodable() -> None:
    data = _encoded("JPEG")
    with pytest.raises(UndecodableImage, match="corrupt or truncated"):
        rgb(EncodedJpeg(data[:200] + b"\xff\xd9", (64, 48)))


def test_check_jpeg_defers_only_what_the_gpu_takes() -> None:
    data = _encoded("JPEG")
    image = check_jpeg(data, "digest", **LIMITS)
    assert image is not None and isinstance(image.pixels, EncodedJpeg) and image.sha256 == "digest"
    for other in (_encoded("JPEG", "CMYK"), _encoded("PNG"), data[:-40]):  # decode_image's to decide
        assert check_jpeg(other, "digest", **LIMITS) is None
    with pytest.raises(BadImage, match="could not be decoded"):
        check_jpeg(b"\xff\xd8\xff" + b"\x00" * 40, "digest", **LIMITS)
