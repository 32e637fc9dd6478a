"""Image validation: format, size and pixel limits, digest; errors a client can act on."""

from __future__ import annotations

import hashlib
import io
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from detectors.base import EncodedJpeg, Picture
from router.errors import BadImage, ImageTooLarge, ImageTooManyPixels, MissingField, UnsupportedImage

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def _pil_open(fp: io.BytesIO) -> Image.Image:
    """PIL's own `Image.open`: ultralytics replaces it with one that, on undecodable bytes, tries to
    install and import pi-heif (failing offline with ModuleNotFoundError instead of a clean error)."""
    patches = sys.modules.get("ultralytics.utils.patches")
    opener = getattr(patches, "_image_open", None) or Image.open
    return opener(fp)


@dataclass(frozen=True)
class DecodedImage:
    """A validated image: its bytes, digest, mime type and RGB pixels (an EncodedJpeg: left for the
    detectors' GPU to decode; None: not decoded, because these exact bytes were validated and
    detected before; see `Pipeline.decode`)."""

    data: bytes
    sha256: str
    mime: str
    pixels: Picture | None


_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


def sniff_mime(data: bytes) -> str | None:
    """The mime type from the first bytes (JPEG, PNG, WebP), without decoding."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    return "image/webp" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else None


_EOI_TAIL = 4096  # bytes at the end of a JPEG searched for its end-of-image marker


def _deferrable(img: Image.Image, data: bytes) -> bool:
    """A JPEG whose header is read and whose end marker is present, in a mode nvjpeg decodes to RGB:
    its pixels can wait for the GPU. (A truncated JPEG has no end marker: PIL decodes it here and
    names the problem; a corrupt one past both checks is named by the runner, `UndecodableImage`.)"""
    return img.format == "JPEG" and img.mode in ("RGB", "L") and b"\xff\xd9" in data[-_EOI_TAIL:]


def decode_image(
    data: bytes, *, max_bytes: int, max_pixels: int, field: str = "image", defer_jpeg: bool = False
) -> DecodedImage:
    """Validate and decode JPEG/PNG/WebP bytes, or raise the error naming `field` (a proto field path).
    `defer_jpeg`: a JPEG is checked from its header and end marker and left undecoded (`EncodedJpeg`)
    for detectors that decode on their GPU (the PIL decode was most of a request's CPU time)."""
    with _errors(field, max_pixels, data):
        img = _header(data, max_bytes, max_pixels, field)
        if defer_jpeg and _deferrable(img, data):
            return DecodedImage(data, hashlib.sha256(data).hexdigest(), FORMATS["JPEG"], EncodedJpeg(data, img.size))
        img.load()
        rgb = img.convert("RGB")
    return DecodedImage(data=data, sha256=hashlib.sha256(data).hexdigest(), mime=FORMATS[img.format or ""], pixels=rgb)


def check_jpeg(
    data: bytes, sha256: str, *, max_bytes: int, max_pixels: int, field: str = "image"
) -> DecodedImage | None:
    """A JPEG validated from its header and end marker and left undecoded (about 50 us: cheaper on
    the event loop than a thread hop), or None when it needs `decode_image` (not deferrable)."""
    with _errors(field, max_pixels, data):
        img = _header(data, max_bytes, max_pixels, field)
        return (
            DecodedImage(data, sha256, FORMATS["JPEG"], EncodedJpeg(data, img.size)) if _deferrable(img, data) else None
        )


def _header(data: bytes, max_bytes: int, max_pixels: int, field: str) -> Image.Image:
    """The image opened from its header (nothing decoded yet), its size, format and pixel count checked."""
    if not data:
        raise MissingField(f"{field} is empty: send JPEG, PNG or WebP bytes", field=field)
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"{field} is {len(data)} bytes; the limit is {max_bytes} bytes (limits.max_image_bytes)",
            field=field,
            metadata={"limit": str(max_bytes), "size": str(len(data))},
        )
    img = _pil_open(io.BytesIO(data))
    fmt = img.format or ""
    if fmt not in FORMATS:
        raise UnsupportedImage(f"{field} is {fmt or 'an unknown format'}; send JPEG, PNG or WebP", field=field)
    w, h = img.size
    if w * h > max_pixels:
        raise ImageTooManyPixels(
            f"{field} is {w}x{h} = {w * h} pixels; the limit is {max_pixels} (limits.max_image_pixels)",
            field=field,
            metadata={"limit": str(max_pixels), "size": str(w * h)},
        )
    return img


@contextmanager
def _errors(field: str, max_pixels: int, data: bytes) -> Iterator[None]:
    """PIL's failures while opening or decoding, as the errors a client can act on."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (BadImage, ImageTooManyPixels, MissingField, ImageTooLarge):
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageTooManyPixels(
            f"{field} has too many pixels: {exc} (limits.max_image_pixels)",
            field=field,
            metadata={"limit": str(max_pixels)},
        ) from exc
    except UnidentifiedImageError as exc:
        raise BadImage(
            f"{field} could not be decoded as JPEG, PNG or WebP (first bytes: {data[:8]!r})", field=field
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
        raise BadImage(f"{field} is corrupt or truncated: {exc}", field=field) from exc
