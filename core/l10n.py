"""Numbers, money and dates in the reader's language, for words made in Python (messages,
notifications, plain-word descriptions). Templates use the same through filters (``points``,
``money``) and Django's named date formats; machine formats (JSON, CSV, form values, data
attributes) never go through here."""

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache

from django.utils import timezone, translation
from django.utils.formats import date_format, number_format
from django.utils.functional import lazy
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


def number(value) -> str:
    """``1234`` -> "1,234" (English), "1.234" (German): whole numbers with the language's grouping."""
    return number_format(int(value), force_grouping=True)


def points(value) -> str:
    """``1234`` -> "1,234 points" ("1 point"; German "1.234 Punkte")."""
    count = int(value)
    return ngettext("%(points)s point", "%(points)s points", count) % {"points": number(count)}


def decimal(value, places: int | None = 1) -> str:
    """``1.5`` -> "1.5" / "1,5", grouped (``places=None``: as many decimals as the value has)."""
    return number_format(Decimal(str(value)), decimal_pos=places, force_grouping=True)


def and_list(items) -> str:
    """"Gold and Silver", "Gold und Silber"."""
    words = [str(item) for item in items]
    if len(words) < 2:
        return "".join(words)
    return _("%(first)s and %(last)s") % {"first": ", ".join(words[:-1]), "last": words[-1]}


def money(amount, currency: str) -> str:
    """``Decimal("1234.5"), "EUR"`` -> "1,234.50 EUR" / "1.234,50 EUR" (the currency's own decimals)."""
    from rewards.currencies import MINOR_UNITS

    return f"{number_format(Decimal(amount), decimal_pos=MINOR_UNITS.get(currency, 2), force_grouping=True)} " \
           f"{currency}".strip()


def day(value: date | datetime) -> str:
    """"3 March 2027" / "3. März 2027" (an aware time is read in the current time zone)."""
    if isinstance(value, datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
    return date_format(value, "DATE_FORMAT")


def short_day(value: date | datetime) -> str:
    """"3 Mar 2027" / "03.03.2027"."""
    if isinstance(value, datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
    return date_format(value, "SHORT_DATE_FORMAT")


def month(value: date | datetime) -> str:
    """"March 2027" / "März 2027"."""
    return date_format(value, "YEAR_MONTH_FORMAT")


def later(function, *args, **kwargs):
    """Words made when they are shown, in the language active then (a member's message is filled
    in their language, however it was asked for): ``later(ngettext, "%d year", "%d years", n)``."""
    return lazy(lambda: function(*args, **kwargs), str)()


def show(value) -> str:
    """A placeholder's value as words: numbers grouped, dates in the language's format, lazy words
    in the active language."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or type(value) is date:
        return _shown(translation.get_language(), value)
    if isinstance(value, datetime):
        return day(value)
    return str(value)


@lru_cache(maxsize=4096)
def _shown(language: str, value: int | date) -> str:
    # A message to 100,000 members repeats the same few dates and numbers: formatting a date the
    # language's way costs tens of microseconds, a dictionary look-up almost nothing.
    return number(value) if isinstance(value, int) else day(value)
