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

from loyalty_site.errors import Invalid

FORMATS = {"JPEG": ("jpg", "JPEG"), "PNG": ("png", "PNG"), "WEBP": ("webp", "WEBP")}
MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 40-megapixel photo; far beyond any phone camera's pictures a shop needs


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
            if width * height > MAX_PIXELS:
                raise _refuse(field, "The picture has too many pixels; please send a smaller one.")
            probe.load()  # decodes every pixel: a truncated or corrupt file fails here
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(field, "The picture has too many pixels; please send a smaller one.") from None
    except UnidentifiedImageError:
        raise _refuse(field, "This file is not a picture; send a JPEG, PNG or WebP.") from None
    except (OSError, SyntaxError, ValueError):
        raise _refuse(field, "The picture is damaged or incomplete.") from None
    upright = ImageOps.exif_transpose(probe)
    extension, pillow_format = FORMATS[kind]
    mode = "RGB" if pillow_format == "JPEG" else ("RGBA" if "A" in upright.getbands() else "RGB")
    pixels = upright.convert(mode)
    # A fresh image holds pixels only: no EXIF, no GPS, no ICC profile, no text chunks.
    clean = Image.new(mode, pixels.size)
    clean.paste(pixels)
    main = clean.copy()
    main.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    thumbnail = None
    if thumb_side:
        small = clean.copy()
        small.thumbnail((thumb_side, thumb_side), Image.Resampling.LANCZOS)
        thumbnail = ContentFile(_encode(small, pillow_format), name=f"thumb.{extension}")
    return CleanImage(ContentFile(_encode(main, pillow_format), name=f"image.{extension}"), thumbnail,
                      main.width, main.height)


def _encode(image: Image.Image, pillow_format: str) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": 85, "optimize": True} if pillow_format in ("JPEG", "WEBP") else {"optimize": True}
    image.save(buffer, format=pillow_format, **options)
    return buffer.getvalue()
