"""Real picture files for upload tests, made with Pillow."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image


def photo(name="photo.jpg", size=(2400, 1600), fmt="JPEG", gps=True) -> SimpleUploadedFile:
    """A JPEG (by default) with a camera and GPS position in its EXIF, as phones write them."""
    image = Image.new("RGB", size, (200, 120, 40))
    for x in range(0, size[0], 50):
        image.paste((30, 90, 160), (x, 0, x + 20, size[1]))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 15"  # Model
    if gps:
        exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}  # GPSInfo
    buffer = io.BytesIO()
    options = {"exif": exif.tobytes()} if fmt in ("JPEG", "WEBP") else {}
    image.save(buffer, format=fmt, **options)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=f"image/{fmt.lower()}")


def renamed_text(name="photo.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"this is not a picture at all\n" * 10, content_type="image/jpeg")


def svg(name="drawing.svg") -> SimpleUploadedFile:
    content = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'
    return SimpleUploadedFile(name, content, content_type="image/svg+xml")


def truncated(name="photo.jpg") -> SimpleUploadedFile:
    whole = photo(name).read()
    return SimpleUploadedFile(name, whole[: len(whole) // 2], content_type="image/jpeg")


def bomb(name="bomb.png") -> SimpleUploadedFile:
    """A tiny file that claims 20,000 x 20,000 pixels: a decompression bomb."""
    image = Image.new("1", (20_000, 20_000))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def huge(name="huge.jpg", megabytes=11) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"\xff\xd8\xff" + b"0" * (megabytes * 1024 * 1024), content_type="image/jpeg")


def smooth(name: str, size: tuple[int, int], fmt: str) -> SimpleUploadedFile:
    """Many pixels in few bytes: a gradient, the worst case for the time an upload takes to clean."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=f"image/{fmt.lower()}")
