"""Checking and cleaning uploaded pictures with Pillow.

Only JPEG, PNG and WebP are accepted, judged by their content, not their name. A file is refused,
with a message a member understands and nothing stored, when it is too big, has too many pixels
(a decompression bomb), is damaged or incomplete, or is not a picture at all (a renamed text file,
an SVG). Accepted pictures are re-encoded from their pixels, which drops every piece of metadata
(EXIF, GPS position, camera), turned upright first, and scaled down.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from django.core.files.base import ContentFile
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import Invalid

FORMATS = {"JPEG": ("jpg", "JPEG"), "PNG": ("png", "PNG"), "WEBP": ("webp", "WEBP")}
MAX_BYTES = 10 * 1024 * 1024
# What a photo needs, and what this machine decodes in well under a second: a JPEG is decoded at a
# reduced scale (1/2, 1/4 or 1/8, in the decoder itself), so it may have many more pixels than a
# PNG or WebP, which must be decoded whole (a 40-megapixel PNG of 38 KB took 8 s and 700 MB).
MAX_PIXELS = {"JPEG": 50_000_000, "PNG": 16_000_000, "WEBP": 16_000_000}
Image.MAX_IMAGE_PIXELS = max(MAX_PIXELS.values())


@dataclass
class CleanImage:
    image: ContentFile
    thumbnail: ContentFile | None
    width: int
    height: int


def _refuse(field: str, message: str) -> Invalid:
    return Invalid(message, code="bad_image", fields={field: message})


def clean_image(upload, *, field: str = "image", max_side: int = 1600, thumb_side: int | None = 320,
                max_bytes: int = MAX_BYTES) -> CleanImage:
    """Check ``upload`` (a Django ``UploadedFile`` or any file object) and return clean copies."""
    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes:
        raise _refuse(field, f"The picture is larger than {max_bytes // (1024 * 1024)} MB.")
    data = upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _refuse(field, f"The picture is larger than {max_bytes // (1024 * 1024)} MB.")
    if not data:
        raise _refuse(field, "The file is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            kind = probe.format
            if kind not in FORMATS:
                raise _refuse(field, "Only JPEG, PNG and WebP pictures are accepted.")
            width, height = probe.size
            if width * height > MAX_PIXELS[kind]:
                raise _refuse(field, "The picture has too many pixels; please send a smaller one.")
            if kind == "JPEG":
                # Decode straight to about the size kept: a 48-megapixel photo costs what a 3-megapixel one does.
                probe.draft("RGB", (max_side, max_side))
            probe.load()  # decodes every pixel: a truncated or corrupt file fails here
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(field, "The picture has too many pixels; please send a smaller one.") from None
    except UnidentifiedImageError:
        raise _refuse(field, "This file is not a picture; send a JPEG, PNG or WebP.") from None
    except (OSError, SyntaxError, ValueError):
        raise _refuse(field, "The picture is damaged or incomplete.") from None
    extension, pillow_format = FORMATS[kind]
    upright = ImageOps.exif_transpose(probe)
    mode = "RGB" if pillow_format == "JPEG" else ("RGBA" if "A" in upright.getbands() else "RGB")
    pixels = upright.convert(mode) if upright.mode != mode else upright
    main = _scaled(pixels, max_side)
    thumbnail = None
    if thumb_side:
        small = _scaled(main, thumb_side)
        thumbnail = ContentFile(_encode(small, pillow_format), name=f"thumb.{extension}")
    return CleanImage(ContentFile(_encode(main, pillow_format), name=f"image.{extension}"), thumbnail,
                      main.width, main.height)


def _scaled(image: Image.Image, side: int) -> Image.Image:
    """A copy at most ``side`` pixels on its longer side that holds pixels only: no EXIF, no GPS, no
    ICC profile, no text chunks (a new image, so nothing of the original's ``info`` comes along)."""
    ratio = min(1.0, side / max(image.size))
    size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
    # reducing_gap: shrink by whole factors first (cheap box filter), then Lanczos on the rest.
    resized = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0) if ratio < 1 else image
    clean = Image.new(resized.mode, resized.size)
    clean.paste(resized)
    return clean


def _encode(image: Image.Image, pillow_format: str) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": 85, "optimize": True} if pillow_format in ("JPEG", "WEBP") else {"optimize": True}
    image.save(buffer, format=pillow_format, **options)
    return buffer.getvalue()
