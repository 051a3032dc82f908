"""Every kind of message the program sends, with its words and the placeholders they may use.

A *kind* is what a message is about (a tier reached, points about to expire, a review request).
Its default title (the subject) and body are written here with ``{placeholders}``; staff may
reword either in the admin (``MessageKindSettings``), using only the kind's placeholders, checked
when they save. Lifecycle kinds can also be switched by staff: sent by us, handed to the store
(a ``campaign.message`` webhook carrying the words, for stores that send through their own
service), or not sent. The portal notification stays either way: it is the member's own page.

The words are plain text. Values are formatted in the reader's language when they go in (``1,250``
points and ``3 March 2027`` in English, ``1.250`` and ``3. März 2027`` in German), so a placeholder
is just its name in braces; ``{{`` and ``}}`` are literal braces.

Languages: the defaults here are translated like every other text (``locale/<language>``). Staff's
words are kept per language: the kind's ``title`` and ``body`` are the words for the program's
language (``LANGUAGE_CODE``, English), ``translations`` holds theirs for the others. A member is
written to in their language: staff's words for it if there are any, else that language's default
(never another language's words: a German member does not get English text because staff
reworded the English).
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from core import l10n
from core.process_cache import ProcessCopy


@dataclass(frozen=True)
class Kind:
    key: str
    label: str  # (lazy, translated) words: read them inside the language wanted
    title: str
    body: str
    placeholders: dict[str, object]  # name: a sample value (what the preview shows), which also documents it
    template: str = "note"  # messages/<template>.html
    lifecycle: bool = False  # staff may hand it to the store or switch it off
    priority: int = 50  # when two compete for the weekly cap, the higher goes first
    event: str = ""  # the domain event that carries the same news to webhooks, if any
    sample_context: dict = field(default_factory=dict)  # the rest of a preview's context (dedicated templates)


COMMON = {"program": "Tea Club"}  # every kind may use these (a name: not translated)

KINDS: dict[str, Kind] = {kind.key: kind for kind in [
    # --- Lifecycle: the program's own news for a member ---------------------------------------
    Kind("points_digest", _("Points earned (a daily digest)"), _("You earned {points} points yesterday"),
         _("You have {balance} points to spend, and {pending} on their way."),
         {"points": 240, "balance": 1250, "pending": 180}, lifecycle=True, event="points.earned",
         priority=30),
    Kind("points_expiring", _("Points expiring soon"), _("{points} of your points expire on {date}"),
         _("Spend them on a reward before then, or earn more to keep them."),
         {"points": 300, "date": _("3 March 2027")}, lifecycle=True, event="points.expiring",
         priority=70),
    Kind("reward_unlocked", _("A reward within reach"), _("You can now redeem {reward}"),
         _("It takes {cost} points, and you have them."), {"reward": _("a free tin of tea"), "cost": 500},
         lifecycle=True, priority=80),
    Kind("tier_up", _("Tier reached"), _("Welcome to {tier}!"), _("You have reached the {tier} tier."),
         {"tier": "Gold"}, lifecycle=True, event="tier.changed", priority=60),
    Kind("tier_warning", _("Tier at risk"), _("Keep {tier}"),
         _("To keep {tier} after {date}: {needed} more before then."),
         {"tier": "Gold", "date": _("31 Dec 2026"), "needed": _("120 points")}, lifecycle=True,
         event="tier.downgrade_warning", priority=70),
    Kind("tier_down", _("Tier lost"), _("You are now {tier}"),
         _("Your {previous} period has ended; you are now {tier}."),
         {"tier": "Silver", "previous": "Gold"}, lifecycle=True, event="tier.changed"),
    Kind("badge", _("Badge awarded"), _("New badge: {badge} ({level})"), "{description}",
         {"badge": "Explorer", "level": "Bronze", "description": _("Tried three kinds of tea.")}, lifecycle=True,
         event="badge.awarded"),
    Kind("challenge", _("Challenge completed"), _("Challenge complete: {challenge}"), "{description}",
         {"challenge": _("Summer of oolong"), "description": _("Three oolongs before September.")}, lifecycle=True,
         event="challenge.completed"),
    Kind("birthday", _("Birthday"), _("Happy birthday from {program}!"),
         _("{gift}With our best wishes for the year ahead."),
         {"gift": _("100 birthday points are yours. ")}, lifecycle=True, event="points.earned", priority=60),
    Kind("anniversary", _("Membership anniversary"), _("{years} with {program}"),
         _("Thank you for being a member since {since}."), {"years": _("2 years"), "since": _("March 2024")},
         lifecycle=True),
    Kind("post_purchase", _("After an order"), _("Thank you for your order {order}"),
         _("It earned you {points} points, yours to spend from {available}."),
         {"order": "#1042", "points": 45, "available": _("18 March 2027")}, lifecycle=True, priority=40),
    Kind("statement", _("Monthly statement (members who ask for it)"), _("Your {month} statement"),
         _("In {month} you earned {earned} points and spent {spent}. Your balance is {balance} points.{expiring}"),
         {"month": _("February 2027"), "earned": 320, "spent": 500, "balance": 1250,
          "expiring": _(" 300 of them expire by 3 April 2027.")}, lifecycle=True, priority=10),
    # --- About the member's own doings (always sent) --------------------------------------------
    Kind("tier_manual", _("Tier set by staff"), _("You are now {tier}"), _("You are in the {tier} tier until {date}."),
         {"tier": "Gold", "date": _("31 Dec 2027")}),
    Kind("question_answered", _("A question answered"), _("Your question about {product} has an answer"), "{answer}",
         {"product": _("Glass kettle"), "answer": _("Yes, it goes on a gas hob.")}),
    Kind("review_rejected", _("A review not published"), _("Your review of {product} was not published"),
         _("Our moderators said: {reason}\nYou can edit it and send it again."),
         {"product": _("Glass kettle"), "reason": _("Please leave out the shop assistant's name.")}),
    # --- Messages with their own template ------------------------------------------------------------
    Kind("review_request", _("Review request"), _("How do you like what you bought? Tell others at {program}"),
         _("Thank you for your order. Your review helps other shoppers, and approved reviews earn points."), {},
         template="review_request",
         sample_context={"items": [{"name": "Glass kettle", "url": "/community/products/KETTLE-1/review/"}]}),
    Kind("survey_invitation", _("Survey invitation"), _("{survey}: two minutes of your time?"), "{intro}",
         {"survey": _("How was your delivery?"), "intro": _("We would love to hear what you think.")},
         template="survey_invitation", sample_context={"url": "/surveys/1/"}),
    Kind("referral_invitation", _("Invitation from a friend"), _("{inviter} invites you to {program}"),
         _("{inviter} thinks you would like {program}."),
         # xgettext:no-python-format
         {"inviter": "Ada", "offer": _("10% off your first order")},
         template="referral_invitation", sample_context={"url": "https://example.com/r/ADA1/"}),
]}


class PlaceholderError(ValueError):
    pass


def check(kind: Kind, text: str) -> None:
    """Raise ``PlaceholderError`` naming what is wrong: an unknown placeholder (with the ones
    allowed), a placeholder with a format or an attribute, or a stray brace."""
    from django.utils.translation import gettext

    allowed = {**COMMON, **kind.placeholders}
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        raise PlaceholderError(gettext("A brace is not closed: write {name} for a placeholder, {{ or }} for a "
                                       "brace.")) from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed:
            known = ", ".join("{" + n + "}" for n in sorted(allowed))
            raise PlaceholderError(gettext("Unknown placeholder %(name)s: this message can use %(known)s.") % {
                "name": "{" + name + "}", "known": known})
        if spec or conversion:
            raise PlaceholderError(gettext("Write %(name)s without a format: values come formatted.") % {
                "name": "{" + name + "}"})


def fill(text: str, values: dict) -> str:
    """``text`` with its placeholders replaced; only plain names are looked up (never attributes),
    so even a text that skipped ``check`` cannot reach into an object. Values are shown in the
    active language: numbers grouped its way, dates in its format, lazy words translated."""
    out = []
    for literal, name in _parsed(text):
        out.append(literal)
        if name is not None:
            out.append(l10n.show(values.get(name, "")))
    return "".join(out)


@functools.lru_cache(maxsize=512)
def _parsed(text: str) -> tuple[tuple[str, str | None], ...]:
    """The text's literal parts and placeholder names (the same words fill 100,000 notes)."""
    return tuple((literal, name) for literal, name, _spec, _conversion in string.Formatter().parse(text))


@dataclass(frozen=True)
class Wording:
    """A kind's words in one language as they are now (staff's for it, or its defaults) and how
    staff want it sent."""

    kind: Kind
    title_text: str
    body_text: str
    delivery: str  # "send", "store" (a campaign.message webhook instead) or "off"
    common: dict[str, str] = field(default_factory=dict)
    language: str = ""

    def title(self, **values) -> str:
        return fill(self.title_text, {**self.common, **values})

    def body(self, **values) -> str:
        return fill(self.body_text, {**self.common, **values})

    def uses(self, name: str) -> bool:
        """Whether the title or the body has the placeholder ``name`` (to skip working out a value
        nobody reads)."""
        return any(found == name for text in (self.title_text, self.body_text)
                   for _literal, found, _spec, _conversion in string.Formatter().parse(text))

    def note(self, member_id: int, url: str = "", **values):
        """A portal note (and message) of this kind for a member. Its words are made when it is
        sent, in the member's own language (``messaging.services.notify``); ``values`` may be
        numbers, dates and lazy words, shown in that language."""
        from messaging.services import Note

        return Note(member_id, self.kind.key, url=url, values=values)


def language_of(language: str | None) -> str:
    """One of ``LANGUAGES`` ("de" for "de-at"), the program's own when unknown or empty."""
    codes = [code for code, _name in settings.LANGUAGES]
    language = (language or "").lower()
    if language in codes:
        return language
    return language.split("-")[0] if language.split("-")[0] in codes else settings.LANGUAGE_CODE


def staff_words(row, language: str) -> tuple[str, str]:
    """Staff's (title, body) for a language; empty where they kept the default."""
    if row is None:
        return "", ""
    if language == settings.LANGUAGE_CODE:
        return row.title, row.body
    found = (row.translations or {}).get(language) or {}
    return found.get("title", ""), found.get("body", "")


def wording(key: str, language: str | None = None) -> Wording:
    """The words of a kind in a language (the active one when not given): staff's for that
    language, or its defaults (staff's changes kept in each process until they change, like the
    program's settings)."""
    from rewards.program import current_program

    language = language_of(language or translation.get_language())
    kind = KINDS[key]
    row = _rows().get(key)
    title, body = staff_words(row, language)
    with translation.override(language):
        title, body = title or str(kind.title), body or str(kind.body)
    return Wording(kind, title, body, row.delivery if row and kind.lifecycle else "send",
                   {"program": current_program().brand.name}, language)


def sample(key: str, language: str | None = None) -> tuple[Wording, dict]:
    """A kind's words and sample values, for a preview."""
    words = wording(key, language)
    return words, {**words.common, **words.kind.placeholders}


def _load_rows() -> dict:
    from messaging.models import MessageKindSettings

    return {row.kind: row for row in MessageKindSettings.objects.all()}


_rows_copy = ProcessCopy("message-wording", _load_rows)


def _rows() -> dict:
    return _rows_copy.get()


def wording_changed() -> None:
    """After staff reworded a kind: every process reads the words again once that is committed."""
    _rows_copy.changed()
