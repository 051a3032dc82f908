"""Colours staff pick for the program's look: checked for legibility, and the shades the portal
and the e-mails derive from them."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
# WCAG 2 AA for normal text: white words on the colour (buttons, the e-mail header) and the colour
# as words on white (links) both need this much contrast.
MIN_CONTRAST = 4.5


def _channels(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def luminance(colour: str) -> float:
    """Relative luminance (WCAG 2)."""
    def linear(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _channels(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_with_white(colour: str) -> float:
    return 1.05 / (luminance(colour) + 0.05)


def mix(colour: str, other: str, share: float) -> str:
    """``colour`` with ``share`` (0..1) of ``other`` mixed in."""
    mixed = (round(a + (b - a) * share) for a, b in zip(_channels(colour), _channels(other), strict=True))
    return "#" + "".join(f"{c:02x}" for c in mixed)


def validate_brand_colour(value: str) -> None:
    if not _HEX.match(value or ""):
        raise ValidationError(_("Use a colour such as #0f766e (# and six hex digits)."), code="colour")
    ratio = contrast_with_white(value)
    if ratio < MIN_CONTRAST:
        raise ValidationError(
            _("Too light to read: white text on it has a contrast of %(ratio)s:1, and at least %(minimum)s:1 is "
              "needed. Pick a darker shade.") % {"ratio": f"{ratio:.1f}", "minimum": MIN_CONTRAST}, code="contrast")
