"""Template helpers available in every template (registered as builtins in settings)."""

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import ngettext

from core import l10n

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_item(context, url_name: str, label: str, exact: bool = False):
    """A navigation link, marked ``aria-current`` on its own section; nothing if the page does not exist yet."""
    try:
        url = reverse(url_name)
    except NoReverseMatch:
        return ""
    request = context.get("request")
    path = request.path if request else ""
    current = path == url or (not exact and url != "/" and path.startswith(url))
    return format_html(
        '<li><a href="{}"{}>{}</a></li>', url, mark_safe(' aria-current="page"') if current else "", label
    )


@register.filter
def points(value) -> str:
    """``1234`` -> ``1,234`` (``1.234`` in German): points are whole numbers, shown grouped the
    reader's way."""
    try:
        return l10n.number(value)
    except (TypeError, ValueError):
        return "0"


@register.filter
def in_points(value) -> str:
    """``{{ cost|in_points }}`` -> "1,234 points" ("1 point"; "1.234 Punkte")."""
    try:
        return l10n.points(value)
    except (TypeError, ValueError):
        return l10n.points(0)


@register.filter
def money(value, currency: str = "") -> str:
    """``{{ amount|money:currency }}`` -> "12.50 EUR" / "12,50 EUR"."""
    try:
        return l10n.money(value, currency or "")
    except (TypeError, ValueError, ArithmeticError):
        return ""


@register.filter
def time_left(delta) -> str:
    """A ``timedelta`` as members say it: "3 days", "5 hours", "20 minutes"."""
    if delta is None:
        return ""
    seconds = max(int(delta.total_seconds()), 0)
    # Rounded up: with 9 days and 23 hours to go, members read "10 days".
    if seconds > 2 * 86400:
        days = -(-seconds // 86400)
        return ngettext("%(count)s day", "%(count)s days", days) % {"count": l10n.number(days)}
    if seconds > 2 * 3600:
        hours = -(-seconds // 3600)
        return ngettext("%(count)s hour", "%(count)s hours", hours) % {"count": hours}
    minutes = max(-(-seconds // 60), 1)
    return ngettext("%(count)s minute", "%(count)s minutes", minutes) % {"count": minutes}


@register.filter
def stars(value) -> str:
    """``4`` -> "★★★★☆" (the number is given beside it for screen readers)."""
    try:
        filled = max(0, min(5, round(float(value))))
    except (TypeError, ValueError):
        return ""
    return "★" * filled + "☆" * (5 - filled)


@register.filter
def get_item(mapping, key):
    """``{{ values|get_item:question.pk }}``: a dict's value in a template; "" when missing."""
    if not mapping:
        return ""
    return mapping.get(key, "")
