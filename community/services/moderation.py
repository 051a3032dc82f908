"""What moderation shares: automatic flags, the posting rate limit, the relevance score, the
community settings and the moderation log."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuditLog, Member, User
from community.models import (
    Answer,
    CommunitySettings,
    Flag,
    ModerationLog,
    ModerationStatus,
    Question,
    Review,
)
from community.services.ratings import ratings_remove
from core.errors import Conflict, Invalid

_LINK = re.compile(r"https?://|www\.|\b[a-z0-9-]+\.(?:com|net|org|io|ly|ru|info|biz|shop|xyz)\b", re.IGNORECASE)
# Texts shorter than this ("Great!", "Love it") are repeated honestly all the time.
REPEAT_MIN_CHARS = 30


def community_settings() -> CommunitySettings:
    settings, _ = CommunitySettings.objects.get_or_create(pk=1)
    return settings


def fingerprint(text: str) -> str:
    """The same text whatever its case, spacing and punctuation."""
    normal = " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
    return hashlib.sha256(normal.encode()).hexdigest()[:32] if len(normal) >= REPEAT_MIN_CHARS else ""


def banned_words_in(text: str, banned: list[str]) -> list[str]:
    lowered = text.lower()
    return [word for word in banned if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", lowered)]


def text_flags(text: str, *, banned: list[str]) -> list[str]:
    flags = []
    if banned_words_in(text, banned):
        flags.append(Flag.BANNED_WORD)
    if _LINK.search(text):
        flags.append(Flag.LINK)
    return flags


def posting_allowed(*, member: Member, now: datetime) -> None:
    """Refuse a post beyond the hourly limit (reviews, questions and answers together)."""
    limit = community_settings().posts_per_hour
    since = now - timedelta(hours=1)
    posted = (Review.objects.filter(member=member, submitted_at__gte=since).count()
              + Question.objects.filter(member=member, created_at__gte=since).count()
              + Answer.objects.filter(member=member, created_at__gte=since).count())
    if posted >= limit:
        raise Conflict(_("You have posted %(count)s times in the last hour; please wait a while before posting "
                         "again.") % {"count": posted}, code="rate_limited",
                       fields={"text": _("Too many posts in an hour; try again later.")})


def relevance(*, helpful: int, photos: int, text: str, published_at: datetime | None) -> float:
    """Most relevant first: 2 per helpful vote, 3 for having photos, 1 per 200 characters of text
    (at most 5), and 1 less per 30 days of age. Age is stored as "days since 1970 / 30" added to
    the score: every review ages at the same rate, so the order is the same as subtracting its age
    today, and the score never needs recomputing as time passes."""
    at = published_at or timezone.now()
    return 2 * helpful + (3 if photos else 0) + min(len(text) // 200, 5) + at.timestamp() / 86400 / 30


def log(*, subject: str, action: str, actor_user: User | None = None, reason: str = "", flags=()) -> None:
    ModerationLog.objects.create(subject=subject, action=action, actor_user=actor_user, reason=reason,
                                 flags=list(flags))


def community_settings_update(*, actor_user: User | None, changes: dict) -> CommunitySettings:
    """Change the community settings (audited). A new banned-words list re-checks what is already
    published: a published review, question or answer with a newly banned word goes back to the
    moderation queue, flagged, until staff look at it."""
    allowed = {"allow_unverified_reviews", "banned_words", "posts_per_hour", "burst_count", "burst_minutes",
               "auto_publish_min_rating", "rejection_reasons", "reply_templates"}
    unknown = set(changes) - allowed
    if unknown:
        raise Invalid(_("Unknown settings."), fields={name: _("Unknown setting.") for name in unknown})
    with transaction.atomic():
        settings = CommunitySettings.objects.select_for_update().get(pk=community_settings().pk)
        before = {name: getattr(settings, name) for name in changes}
        for name, value in changes.items():
            setattr(settings, name, value)
        settings.full_clean()
        settings.save()
        AuditLog.objects.create(action="community.settings", actor_user=actor_user, subject="community_settings",
                                before=before, after=changes)
        rechecked = banned_words_recheck(banned=settings.banned(), actor_user=actor_user) \
            if "banned_words" in changes and before["banned_words"] != changes["banned_words"] else 0
    settings.rechecked = rechecked
    return settings


def banned_words_recheck(*, banned: list[str], actor_user: User | None = None, chunk: int = 2000) -> int:
    """Flag (or unflag) everything against ``banned``; published posts that now contain a banned
    word are held for moderation (and held reviews leave their products' ratings). Reads in chunks
    of primary keys so memory stays flat; the posts to change are read again, locked, so that a
    moderator's decision meanwhile is neither overwritten nor taken off a rating twice. Returns how
    many published posts were held."""
    held, unpublished = 0, []
    with transaction.atomic():
        for model, text_of, kind in ((Review, lambda r: f"{r.title}\n{r.text}", "review"),
                                     (Question, lambda q: q.text, "question"), (Answer, lambda a: a.text, "answer")):
            last = 0
            while True:
                rows = list(model.objects.filter(pk__gt=last).exclude(status=ModerationStatus.REJECTED)
                            .order_by("pk")[:chunk])
                if not rows:
                    break
                last = rows[-1].pk
                stale = [row.pk for row in rows
                         if bool(banned_words_in(text_of(row), banned)) != (Flag.BANNED_WORD in row.flags)]
                changed = []
                for row in model.objects.select_for_update().filter(pk__in=stale).exclude(
                        status=ModerationStatus.REJECTED).order_by("pk"):
                    hit = bool(banned_words_in(text_of(row), banned))
                    if hit == (Flag.BANNED_WORD in row.flags):
                        continue
                    row.flags = [f for f in row.flags if f != Flag.BANNED_WORD] + ([Flag.BANNED_WORD] if hit else [])
                    if hit and row.status == ModerationStatus.APPROVED:
                        row.status = ModerationStatus.PENDING
                        held += 1
                        log(subject=f"{kind}:{row.pk}", action="held", actor_user=actor_user,
                            reason="Contains a word added to the banned list.", flags=row.flags)
                        if model is Review:
                            unpublished.append((row.product_id, row.rating))
                    changed.append(row)
                model.objects.bulk_update(changed, ["flags", "status"])
        # Once, at the end: the summaries are shared rows, locked from here until commit.
        ratings_remove(reviews=unpublished)
    return held
