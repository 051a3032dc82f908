"""The worst pictures an upload may be: how long cleaning takes and how much memory it needs.

Each case runs in a fresh process, so its peak memory is its own. A picture's cost is its pixels,
not its bytes: the worst accepted files are the largest in pixels that still fit in 10 MB (smooth
content compresses to almost nothing). The reference is a typical 12-megapixel phone photo.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_MEASURE = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from core.images import clean_image
from core.errors import Invalid
data = open(sys.argv[2], "rb").read()
import io
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    clean_image(io.BytesIO(data), field="photos")
    outcome = "accepted"
except Invalid as exc:
    outcome = "refused: " + exc.message
took = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": took, "peak_mb": after / 1024, "added_mb": (after - before) / 1024, "outcome": outcome}))
"""


def _smooth(size: tuple[int, int], mode: str = "RGB"):
    from PIL import Image

    # A gradient: every pixel differs a little from the next, so decoding is real work, yet it
    # compresses to a few hundred kilobytes.
    small = Image.linear_gradient("L").resize((256, 256)).convert(mode)
    return small.resize(size)


def _photo_like(size: tuple[int, int]):
    from PIL import Image, ImageFilter

    noise = Image.effect_noise((size[0] // 4, size[1] // 4), 40).filter(ImageFilter.GaussianBlur(1))
    return Image.merge("RGB", [noise, noise.rotate(90, expand=False), noise]).resize(size)


def cases() -> list[tuple[str, bytes]]:
    out = []

    def encode(image, fmt, **options):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **options)
        return buffer.getvalue()

    out.append(("reference: 12 MP JPEG phone photo (4000x3000)", encode(_photo_like((4000, 3000)), "JPEG", quality=90)))
    out.append(("JPEG at the limit: 50 MP (8660x5773)", encode(_smooth((8660, 5773)), "JPEG", quality=90)))
    out.append(("PNG at the limit: 16 MP RGBA (4000x4000)", encode(_smooth((4000, 4000), "RGBA"), "PNG")))
    out.append(("WebP at the limit: 16 MP (4000x4000)", encode(_smooth((4000, 4000)), "WEBP", quality=80)))
    out.append(("PNG over the limit: 39.7 MP (refused)", encode(_smooth((6300, 6300)), "PNG")))
    return out


def measure(data: bytes) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".img") as handle:
        handle.write(data)
        handle.flush()
        runs = []
        for _ in range(3):
            result = subprocess.run([sys.executable, "-c", _MEASURE, str(ROOT), handle.name],
                                    capture_output=True, text=True, check=True, timeout=120)
            runs.append(json.loads(result.stdout))
    best = min(runs, key=lambda r: r["seconds"])
    best["peak_mb"] = max(r["peak_mb"] for r in runs)
    best["added_mb"] = max(r["added_mb"] for r in runs)
    return best


def bench_images(rows: list, Row) -> None:
    measured = [(name, len(data), measure(data)) for name, data in cases()]
    reference = measured[0][2]["seconds"]
    for name, size, result in measured:
        accepted = result["outcome"] == "accepted"
        value = (f"{result['seconds'] * 1000:,.0f} ms ({result['seconds'] / reference:.2f}x ref), "
                 f"+{result['added_mb']:,.0f} MB, {size / 1024:,.0f} KB file, {result['outcome'][:8]}")
        ok = result["seconds"] < 1.0 and result["added_mb"] < 250 and (accepted or "over" in name)
        rows.append(Row(f"Upload cleaning, {name}", value, "< 1 s, < 250 MB", ok))


if __name__ == "__main__":
    from bench.run import Row, print_table

    table: list = []
    bench_images(table, Row)
    print_table(table)
