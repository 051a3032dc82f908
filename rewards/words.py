"""Ledger entries in the reader's language. An entry's description is written once, in English
(the partner API returns it as it is: "Order 1001", "Redeemed: 5 EUR off"); the portal shows it
in the member's language, read back from the few shapes the program writes. A description of
another shape (a custom event's, a partner's) is shown as it is."""

import re
from datetime import datetime

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core import l10n


def _expired_before(day: str) -> str:
    try:
        shown = l10n.short_day(datetime.strptime(day, "%d %b %Y").date())
    except ValueError:
        shown = day
    return _("Expired (earned before %(day)s)") % {"day": shown}


_FIXED = {
    "Adjustment": lambda: _("Adjustment"),
    "Referral void": lambda: _("Referral void"),
    "Happy birthday!": lambda: _("Happy birthday!"),
    "Welcome to the program": lambda: _("Welcome to the program"),
    "Completed your profile": lambda: _("Completed your profile"),
    "Someone found your review helpful": lambda: _("Someone found your review helpful"),
    "A friend you referred placed an order": lambda: _("A friend you referred placed an order"),
    "Welcome bonus for joining through a friend": lambda: _("Welcome bonus for joining through a friend"),
}

# (shape, words): tried in order, the first that matches wins.
_SHAPES = [
    (re.compile(r"^(?P<what>.+): points now available$"),
     lambda m: _("%(what)s: points now available") % {"what": entry_words(m["what"])}),
    (re.compile(r"^Refund (?P<refund>.+) of order (?P<order>.+)$"),
     lambda m: _("Refund %(refund)s of order %(order)s") % {"refund": m["refund"], "order": m["order"]}),
    (re.compile(r"^Order (?P<order>.+)$"), lambda m: _("Order %(order)s") % {"order": m["order"]}),
    (re.compile(r"^Expired \(earned before (?P<day>.+)\)$"), lambda m: _expired_before(m["day"])),
    (re.compile(r"^Expired after (?P<months>\d+) months without activity$"),
     lambda m: ngettext("Expired after %(count)s month without activity",
                        "Expired after %(count)s months without activity", int(m["months"])) % {
         "count": m["months"]}),
    (re.compile(r"^Redeemed: (?P<reward>.+)$"), lambda m: _("Redeemed: %(reward)s") % {"reward": m["reward"]}),
    (re.compile(r"^Badge: (?P<badge>.+) \((?P<level>[^()]+)\)$"),
     lambda m: _("Badge: %(badge)s (%(level)s)") % {"badge": m["badge"], "level": m["level"]}),
    (re.compile(r"^Challenge: (?P<challenge>.+)$"),
     lambda m: _("Challenge: %(challenge)s") % {"challenge": m["challenge"]}),
    (re.compile(r"^Campaign: (?P<campaign>.+)$"), lambda m: _("Campaign: %(campaign)s") % {"campaign": m["campaign"]}),
    (re.compile(r"^Review of (?P<product>.+) rejected$"),
     lambda m: _("Review of %(product)s rejected") % {"product": m["product"]}),
    (re.compile(r"^Photos in your review of (?P<product>.+)$"),
     lambda m: _("Photos in your review of %(product)s") % {"product": m["product"]}),
    (re.compile(r"^Review of (?P<product>.+)$"), lambda m: _("Review of %(product)s") % {"product": m["product"]}),
    (re.compile(r"^Answered: (?P<survey>.+)$"), lambda m: _("Answered: %(survey)s") % {"survey": m["survey"]}),
    (re.compile(r"^Referral reward: (?P<reward>.+)$"),
     lambda m: _("Referral reward: %(reward)s") % {"reward": m["reward"]}),
]


def entry_words(description: str) -> str:
    """A ledger entry's description in the active language."""
    if description in _FIXED:
        return _FIXED[description]()
    for shape, words in _SHAPES:
        found = shape.match(description)
        if found:
            return words(found)
    return description
