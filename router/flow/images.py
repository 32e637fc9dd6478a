"""Image validation: format, size and pixel limits, digest; errors a client can act on."""

from __future__ import annotations

import hashlib
import io
import sys
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

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
    """A validated image: its bytes, digest, mime type and RGB pixels (None: not decoded, because
    these exact bytes were validated and detected before; see `Pipeline.decode`)."""

    data: bytes
    sha256: str
    mime: str
    pixels: Image.Image | None


_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


def sniff_mime(data: bytes) -> str | None:
    """The mime type from the first bytes (JPEG, PNG, WebP), without decoding."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    return "image/webp" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else None


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int, field: str = "image") -> DecodedImage:
    """Validate and decode JPEG/PNG/WebP bytes, or raise the error naming `field` (a proto field path)."""
    if not data:
        raise MissingField(f"{field} is empty: send JPEG, PNG or WebP bytes", field=field)
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"{field} is {len(data)} bytes; the limit is {max_bytes} bytes (limits.max_image_bytes)",
            field=field,
            metadata={"limit": str(max_bytes), "size": str(len(data))},
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
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
            img.load()
            rgb = img.convert("RGB")
    except (BadImage, ImageTooManyPixels):
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
    return DecodedImage(data=data, sha256=hashlib.sha256(data).hexdigest(), mime=FORMATS[fmt], pixels=rgb)
