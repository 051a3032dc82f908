"""Template helpers available in every template (registered as builtins in settings)."""

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

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
    """``1234`` -> ``1,234``: points are whole numbers, shown with thousands separators."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "0"


@register.filter
def time_left(delta) -> str:
    """A ``timedelta`` as members say it: "3 days", "5 hours", "20 minutes"."""
    if delta is None:
        return ""
    seconds = max(int(delta.total_seconds()), 0)
    # Rounded up: with 9 days and 23 hours to go, members read "10 days".
    if seconds > 2 * 86400:
        return f"{-(-seconds // 86400)} days"
    if seconds > 2 * 3600:
        return f"{-(-seconds // 3600)} hours"
    minutes = max(-(-seconds // 60), 1)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


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
