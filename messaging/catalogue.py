"""Every kind of message the program sends, with its words and the placeholders they may use.

A *kind* is what a message is about (a tier reached, points about to expire, a review request).
Its default title (the subject) and body are written here with ``{placeholders}``; staff may
reword either in the admin (``MessageKindSettings``), using only the kind's placeholders, checked
when they save. Lifecycle kinds can also be switched by staff: sent by us, handed to the store
(a ``campaign.message`` webhook carrying the words, for stores that send through their own
service), or not sent. The portal notification stays either way: it is the member's own page.

The words are plain text. Values are formatted before they go in (``1,250`` points, ``3 March
2027``), so a placeholder is just its name in braces; ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

from core.process_cache import ProcessCopy


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    title: str
    body: str
    placeholders: dict[str, str]  # name: a sample value (what the preview shows), which also documents it
    template: str = "note"  # messages/<template>.html
    lifecycle: bool = False  # staff may hand it to the store or switch it off
    priority: int = 50  # when two compete for the weekly cap, the higher goes first
    event: str = ""  # the domain event that carries the same news to webhooks, if any
    sample_context: dict = field(default_factory=dict)  # the rest of a preview's context (dedicated templates)


COMMON = {"program": "Tea Club"}  # every kind may use these

KINDS: dict[str, Kind] = {kind.key: kind for kind in [
    # --- Lifecycle: the program's own news for a member ---------------------------------------
    Kind("points_digest", "Points earned (a daily digest)", "You earned {points} points yesterday",
         "You have {balance} points to spend, and {pending} on their way.",
         {"points": "240", "balance": "1,250", "pending": "180"}, lifecycle=True, event="points.earned",
         priority=30),
    Kind("points_expiring", "Points expiring soon", "{points} of your points expire on {date}",
         "Spend them on a reward before then, or earn more to keep them.",
         {"points": "300", "date": "3 March 2027"}, lifecycle=True, event="points.expiring",
         priority=70),
    Kind("reward_unlocked", "A reward within reach", "You can now redeem {reward}",
         "It takes {cost} points, and you have them.", {"reward": "a free tin of tea", "cost": "500"},
         lifecycle=True, priority=80),
    Kind("tier_up", "Tier reached", "Welcome to {tier}!", "You have reached the {tier} tier.", {"tier": "Gold"},
         lifecycle=True, event="tier.changed", priority=60),
    Kind("tier_warning", "Tier at risk", "Keep {tier}", "To keep {tier} after {date}: {needed} more before then.",
         {"tier": "Gold", "date": "31 Dec 2026", "needed": "120 points"}, lifecycle=True,
         event="tier.downgrade_warning", priority=70),
    Kind("tier_down", "Tier lost", "You are now {tier}", "Your {previous} period has ended; you are now {tier}.",
         {"tier": "Silver", "previous": "Gold"}, lifecycle=True, event="tier.changed"),
    Kind("badge", "Badge awarded", "New badge: {badge} ({level})", "{description}",
         {"badge": "Explorer", "level": "Bronze", "description": "Tried three kinds of tea."}, lifecycle=True,
         event="badge.awarded"),
    Kind("challenge", "Challenge completed", "Challenge complete: {challenge}", "{description}",
         {"challenge": "Summer of oolong", "description": "Three oolongs before September."}, lifecycle=True,
         event="challenge.completed"),
    Kind("birthday", "Birthday", "Happy birthday from {program}!", "{gift}With our best wishes for the year ahead.",
         {"gift": "100 birthday points are yours. "}, lifecycle=True, event="points.earned", priority=60),
    Kind("anniversary", "Membership anniversary", "{years} with {program}",
         "Thank you for being a member since {since}.", {"years": "2 years", "since": "March 2024"},
         lifecycle=True),
    Kind("post_purchase", "After an order", "Thank you for your order {order}",
         "It earned you {points} points, yours to spend from {available}.",
         {"order": "#1042", "points": "45", "available": "18 March 2027"}, lifecycle=True, priority=40),
    Kind("statement", "Monthly statement (members who ask for it)", "Your {month} statement",
         "In {month} you earned {earned} points and spent {spent}. Your balance is {balance} points.{expiring}",
         {"month": "February 2027", "earned": "320", "spent": "500", "balance": "1,250",
          "expiring": " 300 of them expire by 3 April 2027."}, lifecycle=True, priority=10),
    # --- About the member's own doings (always sent) --------------------------------------------
    Kind("tier_manual", "Tier set by staff", "You are now {tier}", "You are in the {tier} tier until {date}.",
         {"tier": "Gold", "date": "31 Dec 2027"}),
    Kind("question_answered", "A question answered", "Your question about {product} has an answer", "{answer}",
         {"product": "Glass kettle", "answer": "Yes, it goes on a gas hob."}),
    Kind("review_rejected", "A review not published", "Your review of {product} was not published",
         "Our moderators said: {reason}\nYou can edit it and send it again.",
         {"product": "Glass kettle", "reason": "Please leave out the shop assistant's name."}),
    # --- Messages with their own template ------------------------------------------------------------
    Kind("review_request", "Review request", "How do you like what you bought? Tell others at {program}",
         "Thank you for your order. Your review helps other shoppers, and approved reviews earn points.", {},
         template="review_request",
         sample_context={"items": [{"name": "Glass kettle", "url": "/community/products/KETTLE-1/review/"}]}),
    Kind("survey_invitation", "Survey invitation", "{survey}: two minutes of your time?", "{intro}",
         {"survey": "How was your delivery?", "intro": "We would love to hear what you think."},
         template="survey_invitation", sample_context={"url": "/surveys/1/"}),
    Kind("referral_invitation", "Invitation from a friend", "{inviter} invites you to {program}",
         "{inviter} thinks you would like {program}.",
         {"inviter": "Ada", "offer": "10% off your first order"},
         template="referral_invitation", sample_context={"url": "https://example.com/r/ADA1/"}),
]}


class PlaceholderError(ValueError):
    pass


def check(kind: Kind, text: str) -> None:
    """Raise ``PlaceholderError`` naming what is wrong: an unknown placeholder (with the ones
    allowed), a placeholder with a format or an attribute, or a stray brace."""
    allowed = {**COMMON, **kind.placeholders}
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        raise PlaceholderError("A brace is not closed: write {name} for a placeholder, {{ or }} for a brace.") \
            from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed:
            known = ", ".join("{" + n + "}" for n in sorted(allowed))
            raise PlaceholderError(f"Unknown placeholder {{{name}}}: this message can use {known}.")
        if spec or conversion:
            raise PlaceholderError(f"Write {{{name}}} without a format: values come formatted.")


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with its placeholders replaced; only plain names are looked up (never attributes),
    so even a text that skipped ``check`` cannot reach into an object."""
    out = []
    for literal, name, _spec, _conversion in string.Formatter().parse(text):
        out.append(literal)
        if name is not None:
            out.append(str(values.get(name, "")))
    return "".join(out)


@dataclass(frozen=True)
class Wording:
    """A kind's words as they are now (staff's, or the defaults) and how staff want it sent."""

    kind: Kind
    title_text: str
    body_text: str
    delivery: str  # "send", "store" (a campaign.message webhook instead) or "off"
    common: dict[str, str] = field(default_factory=dict)

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
        """A portal note (and message) of this kind for a member, in these words."""
        from messaging.services import Note

        return Note(member_id, self.kind.key, self.title(**values), self.body(**values), url)


def wording(key: str) -> Wording:
    """The words of a kind, with staff's changes (kept in each process until they change, like the
    program's settings)."""
    from rewards.program import current_program

    kind = KINDS[key]
    row = _rows().get(key)
    return Wording(kind, row.title if row and row.title else kind.title, row.body if row and row.body else kind.body,
                   row.delivery if row and kind.lifecycle else "send", {"program": current_program().brand.name})


def sample(key: str) -> tuple[Wording, dict[str, str]]:
    """A kind's words and sample values, for a preview."""
    words = wording(key)
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


def forget_wording() -> None:
    _rows_copy.forget()
