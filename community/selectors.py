"""Reads of the community: leaderboards and spotlights (only public profiles appear), product
pages with their rating summary, reviews, questions and JSON-LD, testimonials and photos."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.core.cache import cache
from django.db.models import Exists, F, OuterRef, Prefetch, Q, Sum, Window
from django.db.models.functions import Rank
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Member
from community.models import (
    Answer,
    ModerationStatus,
    Product,
    ProductRating,
    PublicProfile,
    Question,
    Review,
    ReviewPhoto,
    Spotlight,
)
from core.replica import replica_reads
from rewards import criteria
from rewards.models import Challenge, EntryKind, LedgerEntry, MemberTier, OrderLine, OrderStatus
from rewards.program import current_program

EARNED = Sum(F("available_delta") + F("pending_delta") - F("owed_delta"))


@dataclass
class Row:
    rank: int
    member_id: int
    name: str
    avatar: str
    tier: str
    value: Decimal


@dataclass
class Leaderboard:
    title: str
    rows: list[Row]
    me: Row | None
    me_public: bool


def _earned(since: datetime | None):
    entries = LedgerEntry.objects.filter(kind__in=[EntryKind.EARN, EntryKind.REVERSE])
    return entries if since is None else entries.filter(effective_at__gte=since)


def _rows(found: list[tuple[int, int, Decimal]]) -> list[Row]:
    """(rank, member, value) rows with each member's public name, avatar and tier, in two queries."""
    ids = [member_id for _, member_id, _ in found]
    profiles = {p.member_id: p for p in PublicProfile.objects.filter(member_id__in=ids)}
    tiers = dict(MemberTier.objects.filter(member_id__in=ids).values_list("member_id", "tier__name"))
    base = current_program().base_tier
    rows = []
    for rank, member_id, value in found:
        profile = profiles.get(member_id)
        rows.append(Row(rank, member_id, str(profile) if profile else _("You"), profile.avatar.url
                        if profile and profile.avatar else "", tiers.get(member_id, base.name if base else ""),
                        value))
    return rows


# Leaderboards are shared by everyone who opens the community page: the ranking (computed in the
# database) is kept this long, and each member's own figure is always read fresh.
LEADERBOARD_SECONDS = 60


def _rank_of(value, ranking: list[tuple[int, int, Decimal]], member_id: int) -> int:
    """Where ``value`` stands among the others in a ranking sorted by value, highest first."""
    descending = [-v for _, m, v in ranking if m != member_id]
    return 1 + bisect.bisect_left(descending, -value)


def _points_ranking(since: datetime | None) -> list[tuple[int, int, Decimal]]:
    """(rank, member, points) of every public member who earned since ``since``: ranked by a window
    function in the database, cached for ``LEADERBOARD_SECONDS``."""
    @replica_reads()  # shared by everyone for a minute anyway
    def compute():
        rows = (_earned(since).filter(member__public_profile__is_public=True)
                .values("member_id").annotate(points=EARNED).filter(points__gt=0)
                .annotate(rank=Window(Rank(), order_by=F("points").desc())).order_by("rank", "member_id")
                .values_list("rank", "member_id", "points"))
        return [(rank, member_id, Decimal(points)) for rank, member_id, points in rows]

    key = f"leaderboard:points:{since.isoformat() if since else 'all'}"
    return cache.get_or_set(key, compute, LEADERBOARD_SECONDS)


def points_leaderboard(*, title: str, since: datetime | None, member: Member | None, limit: int = 10) -> Leaderboard:
    """Points earned since ``since`` (all time when None), ranked among public profiles; the
    member's own rank as well, even outside the top list or when not public (then: where they
    would stand)."""
    ranking = _points_ranking(since)
    rows = _rows(ranking[:limit])
    me, me_public = None, False
    if member is not None:
        me_public = PublicProfile.objects.filter(member=member, is_public=True).exists()
        mine = _earned(since).filter(member=member).aggregate(points=EARNED)["points"] or 0
        if mine > 0:
            me = Row(_rank_of(Decimal(mine), ranking, member.pk), member.pk, _("You"), "", "", Decimal(mine))
    return Leaderboard(title, rows, me, me_public)


def challenge_leaderboards(*, member: Member | None, limit: int = 10, now: datetime | None = None) -> list[Leaderboard]:
    """For each running challenge, the public members furthest along (cached like the points
    boards), and the member's own progress, read fresh."""
    now = now or timezone.now()
    program = current_program()
    boards = []
    challenges = list(Challenge.objects.filter(is_active=True, starts_at__lte=now, ends_at__gt=now))
    me_public = bool(challenges) and member is not None and PublicProfile.objects.filter(
        member=member, is_public=True).exists()
    for challenge in challenges:
        @replica_reads()
        def compute(challenge=challenge):
            public_ids = list(PublicProfile.objects.filter(is_public=True).values_list("member_id", flat=True))
            values = criteria.values(challenge.criterion, activity_type=challenge.activity_type,
                                     member_ids=public_ids, window=criteria.Window(challenge.starts_at,
                                                                                   challenge.ends_at),
                                     currency=program.settings.currency, now=now)
            ranked = sorted(((v, m) for m, v in values.items() if v > 0), key=lambda x: (-x[0], x[1]))
            found, rank, previous = [], 0, None
            for position, (value, member_id) in enumerate(ranked, start=1):
                rank = rank if value == previous else position
                previous = value
                found.append((rank, member_id, value))
            return found

        ranking = cache.get_or_set(f"leaderboard:challenge:{challenge.pk}", compute, LEADERBOARD_SECONDS)
        me = None
        if member is not None:
            mine = criteria.values(challenge.criterion, activity_type=challenge.activity_type, member_ids=[member.pk],
                                   window=criteria.Window(challenge.starts_at, challenge.ends_at),
                                   currency=program.settings.currency, now=now).get(member.pk, 0)
            if mine > 0:
                me = Row(_rank_of(mine, ranking, member.pk), member.pk, _("You"), "", "", mine)
        boards.append(Leaderboard(challenge.name, _rows(ranking[:limit]), me, me_public))
    return boards


def spotlights(*, now: datetime | None = None):
    now = now or timezone.now()
    return (
        Spotlight.objects.filter(member__public_profile__is_public=True, starts_at__lte=now)
        .exclude(ends_at__lte=now).select_related("member__public_profile")[:3]
    )


def public_member(*, member_id: int):
    """A member's public page data, or None when their profile is not public."""
    profile = PublicProfile.objects.filter(member_id=member_id, is_public=True).select_related("member").first()
    if profile is None or profile.member.erased_at is not None:
        return None
    return profile


# --- Products, reviews, questions -----------------------------------------------------------------

SORTS = {
    "relevant": (gettext_lazy("Most relevant"), ["-relevance", "-id"]),
    "helpful": (gettext_lazy("Most helpful"), ["-helpful_count", "-published_at", "-id"]),
    "newest": (gettext_lazy("Newest"), ["-published_at", "-id"]),
    "highest": (gettext_lazy("Highest rating"), ["-rating", "-published_at", "-id"]),
    "lowest": (gettext_lazy("Lowest rating"), ["rating", "-published_at", "-id"]),
}


@dataclass
class RatingSummary:
    count: int
    average: Decimal | None
    # (stars, count, percent of all), 5 stars first
    distribution: list[tuple[int, int, int]]

    def reviews_with(self, stars: int | None) -> int:
        """How many published reviews give ``stars`` stars (all of them when None): a page's count,
        known without counting the reviews."""
        return self.count if stars is None else next(count for n, count, _ in self.distribution if n == stars)


def _summary(row: ProductRating | None) -> RatingSummary:
    count = row.count if row is not None else 0
    if not count:
        return RatingSummary(0, None, [(n, 0, 0) for n in range(5, 0, -1)])
    average = (Decimal(row.total) / count).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    stars = {n: getattr(row, f"stars_{n}") for n in range(1, 6)}
    return RatingSummary(count, average, [(n, stars[n], round(100 * stars[n] / count)) for n in range(5, 0, -1)])


def rating_summary(*, product: Product) -> RatingSummary:
    """Average, count and a bar per star of the published reviews: one row, the product's
    ``ProductRating``, however many reviews it has."""
    return _summary(ProductRating.objects.filter(pk=product.pk).first())


def rating_summaries(*, skus: list[str]) -> dict[str, RatingSummary]:
    """``rating_summary`` of each product of a listing, by SKU, in one query (an unknown SKU: no reviews)."""
    rows = {row.sku: row for row in ProductRating.objects.filter(product__sku__in=skus).annotate(sku=F("product__sku"))}
    return {sku: _summary(rows.get(sku)) for sku in skus}


def product_reviews(*, product: Product, sort: str = "relevant", rating: int | None = None,
                    with_photos: bool = False):
    """Published reviews of a product in the chosen order, with their authors and photos."""
    reviews = Review.objects.filter(product=product, status=ModerationStatus.APPROVED)
    if rating is not None:
        reviews = reviews.filter(rating=rating)
    if with_photos:
        reviews = reviews.filter(photo_count__gt=0)
    return (reviews.select_related("member__public_profile").prefetch_related("photos")
            .order_by(*SORTS.get(sort, SORTS["relevant"])[1]))


def bought(*, member: Member, sku: str, partner=None) -> bool:
    """The member has an order with this SKU that was not refunded in full (at ``partner``, if given:
    what one store may know of a member two stores share)."""
    lines = OrderLine.objects.filter(order__member=member, sku=sku)
    if partner is not None:
        lines = lines.filter(order__partner=partner)
    return lines.exclude(order__status=OrderStatus.REFUNDED).exists()


def author_name(member: Member) -> str:
    """How a reviewer is shown: their public display name, else first name and initial."""
    # A missing one-to-one row raises an AttributeError subclass: getattr's default covers it.
    profile = getattr(member, "public_profile", None)
    if profile is not None and profile.is_public and profile.display_name:
        return profile.display_name
    if member.first_name:
        return f"{member.first_name} {member.last_name[:1]}." if member.last_name else member.first_name
    return "A member"


def product_questions(*, product: Product, limit: int = 10):
    answers = Prefetch("answers", queryset=Answer.objects.filter(status=ModerationStatus.APPROVED)
                       .order_by("-helpful_count", "created_at"), to_attr="published_answers")
    return list(Question.objects.filter(product=product, status=ModerationStatus.APPROVED)
                .order_by("-created_at").prefetch_related(answers)[:limit])


def product_json_ld(*, product: Product, summary: RatingSummary, reviews, url: str) -> dict:
    """schema.org Product with its AggregateRating and the reviews on the page (what search
    engines read for review stars). Without reviews there is no rating: an empty one is invalid."""
    data = {"@context": "https://schema.org", "@type": "Product", "name": product.name, "sku": product.sku,
            "url": product.url or url}
    if product.image_url:
        data["image"] = product.image_url
    if product.category:
        data["category"] = product.category
    if summary.count:
        data["aggregateRating"] = {"@type": "AggregateRating", "ratingValue": str(summary.average),
                                   "reviewCount": summary.count, "bestRating": 5, "worstRating": 1}
        data["review"] = [{
            "@type": "Review", "name": review.title, "reviewBody": review.text,
            "datePublished": review.published_at.date().isoformat(),
            "author": {"@type": "Person", "name": author_name(review.member)},
            "reviewRating": {"@type": "Rating", "ratingValue": review.rating, "bestRating": 5, "worstRating": 1},
        } for review in reviews]
    return data


def testimonials(*, limit: int = 6):
    return (Review.objects.filter(featured=True, status=ModerationStatus.APPROVED)
            .select_related("product", "member__public_profile").order_by("-published_at")[:limit])


def photo_gallery(*, limit: int = 12):
    return (ReviewPhoto.objects.filter(review__status=ModerationStatus.APPROVED)
            .select_related("review__product").order_by("-id")[:limit])


def member_reviews(*, member: Member):
    return Review.objects.filter(member=member).select_related("product").order_by("-submitted_at")


def bought_not_reviewed(*, member: Member, limit: int = 12) -> list[tuple[str, str]]:
    """(sku, name) of products the member bought and has not reviewed, most recent first."""
    reviewed = Review.objects.filter(member=member, product__sku=OuterRef("sku"))
    seen, found = set(), []
    for sku, name in (OrderLine.objects.filter(order__member=member).exclude(order__status=OrderStatus.REFUNDED)
                      .exclude(Exists(reviewed)).order_by("-order_id", "position").values_list("sku", "name")[:200]):
        if sku not in seen:
            seen.add(sku)
            found.append((sku, name or sku))
        if len(found) == limit:
            break
    return found


def private_media_visible(*, name: str, user) -> tuple[bool, bool]:
    """Whether ``user`` may see the private upload ``name``, and whether everyone may.

    A review photo is for everyone once the review is published, and before that (pending,
    rejected, held) only for its author and staff. An avatar is for everyone while the profile
    is public, otherwise only for its member and staff. A name that is no upload: nobody.
    """
    is_staff = bool(getattr(user, "is_staff", False))
    member_id = getattr(getattr(user, "member", None), "pk", None) if getattr(user, "is_authenticated", False) \
        else None
    photo = (ReviewPhoto.objects.filter(Q(image=name) | Q(thumbnail=name))
             .values("review__status", "review__member_id").first())
    if photo is not None:
        public = photo["review__status"] == ModerationStatus.APPROVED
        return public or is_staff or photo["review__member_id"] == member_id, public
    profile = PublicProfile.objects.filter(avatar=name).values("is_public", "member_id").first()
    if profile is not None:
        public = profile["is_public"]
        return public or is_staff or profile["member_id"] == member_id, public
    return False, False


def member_export_profile(member) -> dict | None:
    """The public profile, for the member's data download."""
    from community.models import PublicProfile

    profile = PublicProfile.objects.filter(member=member).first()
    if profile is None:
        return None
    return {"is_public": profile.is_public, "display_name": profile.display_name,
            "avatar": profile.avatar.url if profile.avatar else None}


def member_export_reviews(member) -> dict:
    """Reviews, questions and answers, for the member's data download."""
    from community.models import Answer, Question, Review

    return {
        "reviews": [{
            "product_sku": review.product.sku, "rating": review.rating, "title": review.title, "text": review.text,
            "status": review.status, "submitted_at": review.submitted_at.isoformat(),
            "photos": [photo.image.url for photo in review.photos.all()],
        } for review in Review.objects.filter(member=member).select_related("product").prefetch_related("photos")],
        "questions": list(Question.objects.filter(member=member).values("product__sku", "text", "status",
                                                                         "created_at")),
        "answers": list(Answer.objects.filter(member=member).values("question_id", "text", "status", "created_at")),
    }
