"""Products and reviews: writing, moderating, rewarding, voting and reporting."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Member, Partner, User
from community.models import (
    CommunitySettings,
    Flag,
    HelpfulVote,
    ModerationStatus,
    Product,
    Report,
    Review,
    ReviewPhoto,
)
from community.selectors import bought
from community.services.moderation import (
    community_settings,
    fingerprint,
    log,
    posting_allowed,
    relevance,
    text_flags,
)
from community.services.ratings import rating_add, ratings_remove
from core import events
from core.errors import Conflict, Invalid, NotFound
from core.images import CleanImage, clean_image
from messaging.catalogue import wording
from messaging.models import Purpose
from messaging.services import notify
from rewards.models import Activity, ActivityType, OrderLine
from rewards.services import ActivityInput, activities_record, activity_reverse

MAX_PHOTOS = 5
# Reports that hide a published review until staff look at it.
REPORTS_TO_HOLD = 3


# --- Products -------------------------------------------------------------------------------------

def product_upsert(*, partner: Partner | None, sku: str, name: str, category: str = "", url: str = "",
                   image_url: str = "") -> tuple[Product, bool]:
    """Create or update the product with this SKU. Returns (product, created)."""
    sku = (sku or "").strip()
    if not sku or "/" in sku:
        raise Invalid(_("A SKU is required and may not contain '/'."), fields={"sku": _("Required, without '/'.")})
    if not (name or "").strip():
        raise Invalid(_("A product name is required."), fields={"name": _("Required.")})
    values = {"name": name.strip(), "category": category.strip(), "url": url, "image_url": image_url,
              "partner": partner}
    product, created = Product.objects.update_or_create(sku=sku, defaults=values)
    return product, created


def product_ensure(*, sku: str) -> Product | None:
    """The product with this SKU, made from the most recent order line that names it when no
    partner has sent it yet; None when nobody ever sold it."""
    product = Product.objects.filter(sku=sku).first()
    if product is not None:
        return product
    line = OrderLine.objects.filter(sku=sku).order_by("-order_id").values("name", "category").first()
    if line is None:
        return None
    product, _ = Product.objects.get_or_create(sku=sku, defaults={"name": line["name"] or sku,
                                                                  "category": line["category"]})
    return product


def products_from_order_lines() -> int:
    """Give every SKU sold that has no product yet its row, named as ``product_ensure`` names one
    (from the latest order line with it), in one statement: what the nightly recommendations name
    must exist. Returns how many were made; a concurrent ``product_ensure`` of the same SKU wins."""
    from core import bulk

    latest = (OrderLine.objects.exclude(sku__in=Product.objects.values("sku")).values("sku")
              .annotate(last=Max("pk")).values("last"))
    now = timezone.now()
    rows = [(sku, (name or sku)[:255], category, "", "", None, now, now) for sku, name, category in
            OrderLine.objects.filter(pk__in=latest).order_by("sku").values_list("sku", "name", "category")]
    with transaction.atomic():
        return len(bulk.insert_new(Product, ("sku", "name", "category", "url", "image_url", "partner_id",
                                             "created_at", "updated_at"), rows, unique="sku"))


# --- Writing a review -----------------------------------------------------------------------------

@dataclass
class ReviewInput:
    rating: int
    title: str
    text: str


def _check_review(data: ReviewInput) -> ReviewInput:
    problems = {}
    try:
        rating = int(data.rating)
    except (TypeError, ValueError):
        rating = 0
    if not 1 <= rating <= 5:
        problems["rating"] = "Choose 1 to 5 stars."
    title, text = " ".join((data.title or "").split()), (data.text or "").strip()
    if len(title) < 3 or len(title) > 120:
        problems["title"] = "A title of 3 to 120 characters."
    if len(text) < 10 or len(text) > 5000:
        problems["text"] = "Tell others a little more: 10 to 5,000 characters."
    if problems:
        raise Invalid(_("Please check the review."), fields=problems)
    return ReviewInput(rating, title, text)


def review_photos_check(*, photos) -> None:
    """Refuse photos that are not pictures (``Invalid`` naming the file), as ``review_submit``
    would: for a form that comes back with other errors, so every problem shows at once."""
    _clean_photos(photos)
    for upload in photos:
        upload.seek(0)


def _clean_photos(photos) -> list[CleanImage]:
    cleaned = []
    for number, upload in enumerate(photos, start=1):
        try:
            cleaned.append(clean_image(upload, field="photos"))
        except Invalid as exc:
            name = getattr(upload, "name", f"photo {number}")
            message = f"{name}: {exc.fields['photos'][0]}"
            raise Invalid(message, code=exc.code, fields={"photos": message}) from None
    return cleaned


def review_submit(*, member: Member, product: Product, data: ReviewInput, photos=(),
                  remove_photo_ids=()) -> Review:
    """Write or edit the member's review of ``product``; either way it waits for moderation.

    Everything is checked first and the photos cleaned (slow, so outside the transaction): a bad
    photo refuses the whole review and nothing is stored. A verified buyer mark comes from the
    member's orders; without one the review is refused when the program allows only buyers."""
    data = _check_review(data)
    settings = community_settings()
    verified = bought(member=member, sku=product.sku)
    if not verified and not settings.allow_unverified_reviews:
        raise Conflict(_("Only customers who bought this product can review it."), code="not_a_buyer",
                       fields={"product": _("You have not bought this product.")})
    existing = Review.objects.filter(member=member, product=product).first()
    keep = 0 if existing is None else existing.photos.exclude(pk__in=list(remove_photo_ids)).count()
    if keep + len(photos) > MAX_PHOTOS:
        raise Invalid(_("At most %(count)s photos per review.") % {"count": MAX_PHOTOS},
                      fields={"photos": _("At most %(count)s photos.") % {"count": MAX_PHOTOS}})
    now = timezone.now()
    posting_allowed(member=member, now=now)
    cleaned = _clean_photos(photos)
    with transaction.atomic():
        # Two tabs sending a first review at once: the unique (member, product) index lets one
        # insert; get_or_create then finds and locks that row, and the other becomes an edit.
        review, created = Review.objects.select_for_update().get_or_create(
            member=member, product=product,
            defaults={"rating": data.rating, "title": data.title, "text": data.text, "created_at": now})
        edited = not created
        # An edit waits for a moderator again: off the page, and out of the rating, until then.
        unpublished = edited and review.status == ModerationStatus.APPROVED
        old_rating = review.rating
        review.rating, review.title, review.text = data.rating, data.title, data.text
        review.verified_buyer = verified
        review.status = ModerationStatus.PENDING
        review.rejection_reason = ""
        review.submitted_at = now
        review.fingerprint = fingerprint(data.text)
        review.flags = _review_flags(review, settings=settings, now=now)
        review.save()
        if remove_photo_ids:
            for photo in review.photos.filter(pk__in=list(remove_photo_ids)):
                photo.image.delete(save=False)
                photo.thumbnail.delete(save=False)
                photo.delete()
        position = review.photos.count()
        for offset, clean in enumerate(cleaned):
            photo = ReviewPhoto(review=review, width=clean.width, height=clean.height, position=position + offset)
            extension = clean.image.name.rsplit(".", 1)[-1]
            photo.image.save(f"r{review.pk}-{position + offset}.{extension}", clean.image, save=False)
            photo.thumbnail.save(f"r{review.pk}-{position + offset}-thumb.{extension}", clean.thumbnail, save=False)
            photo.save()
        review.photo_count = review.photos.count()
        review.save(update_fields=["photo_count"])
        log(subject=f"review:{review.pk}", action="edited" if edited else "submitted", flags=review.flags)
        if unpublished:  # last, like every change of the product's shared summary row
            ratings_remove(reviews=[(product.pk, old_rating)])
    minimum = settings.auto_publish_min_rating
    # First submissions only: an edit (of a review a moderator rejected, say) waits for a moderator.
    if minimum and created and verified and review.rating >= minimum and not review.flags and not review.photo_count:
        # The store's rule: a verified buyer's good review with nothing to look at needs no moderator.
        why = f"Published at once: a verified buyer, {review.rating} stars, no photo, no flag."
        review = review_approve(review_id=review.pk, moderator=None, reason=why)
    return review


def _review_flags(review: Review, *, settings: CommunitySettings, now) -> list[str]:
    flags = text_flags(f"{review.title}\n{review.text}", banned=settings.banned())
    if review.fingerprint and Review.objects.filter(fingerprint=review.fingerprint).exclude(pk=review.pk).exists():
        flags.append(Flag.REPEATED_TEXT)
    since = now - timezone.timedelta(minutes=settings.burst_minutes)
    recent = Review.objects.filter(member=review.member, submitted_at__gte=since).exclude(pk=review.pk).count()
    if recent + 1 >= settings.burst_count:
        flags.append(Flag.BURST)
    if review.report_count:
        flags.append(Flag.REPORTED)
    return flags


# --- Moderation -----------------------------------------------------------------------------------

def review_approve(*, review_id: int, moderator: User | None, reason: str = "") -> Review:
    """Publish a review and reward it through the earning rules (``review_approved``, and
    ``review_photo`` when it has photos), at most once: approving again, or again after an edit,
    gives nothing more while the first reward stands."""
    with transaction.atomic():
        # The review's row only (of=self), not the product's too: a member's edit of another review of
        # the product checks its product key at commit, after changing the product's rating row,
        # which this approval then waits for (a deadlock, seen with edits racing approvals).
        review = Review.objects.select_for_update(of=("self",)).select_related("product").get(pk=review_id)
        if review.status == ModerationStatus.APPROVED:
            return review
        now = timezone.now()
        review.status = ModerationStatus.APPROVED
        review.published_at = review.published_at or now
        review.moderated_at = now
        review.rejection_reason = ""
        review.relevance = relevance(helpful=review.helpful_count, photos=review.photo_count, text=review.text,
                                     published_at=review.published_at)
        if review.reward_activity_id is None:
            review.reward_rounds += 1
            key = f"review:{review.pk}:{review.reward_rounds}"
            items = [ActivityInput(member_id=review.member_id, type=ActivityType.REVIEW_APPROVED, source_key=key,
                                   occurred_at=now, description=f"Review of {review.product.name}",
                                   properties={"review_id": review.pk, "sku": review.product.sku})]
            if review.photo_count:
                items.append(ActivityInput(
                    member_id=review.member_id, type=ActivityType.REVIEW_PHOTO, source_key=f"{key}:photo",
                    occurred_at=now, description=f"Photos in your review of {review.product.name}",
                    properties={"review_id": review.pk, "photos": review.photo_count}))
            results = activities_record(items=items)
            review.reward_activity_id = results[0].activity_id
        review.save()
        log(subject=f"review:{review.pk}", action="approved", actor_user=moderator, reason=reason,
            flags=review.flags)
        events.emit("review.approved", member_id=review.member_id, data={
            "review_id": review.pk, "sku": review.product.sku, "rating": review.rating})
        # Last: the product's summary row is shared by every review of it, and stays locked until commit.
        rating_add(product_id=review.product_id, stars=review.rating)
    return review


def review_reject(*, review_id: int, moderator: User | None, reason: str) -> Review:
    """Reject a review with a reason the member sees. A review rejected after it was published loses
    its points (reversed in the ledger, the review's own points first)."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid(_("Say why, for the member."), fields={"reason": _("A reason is required.")})
    with transaction.atomic():
        review = Review.objects.select_for_update(of=("self",)).select_related("product").get(pk=review_id)
        if review.status == ModerationStatus.REJECTED:
            return review
        now = timezone.now()
        unpublished = review.status == ModerationStatus.APPROVED
        review.status, review.rejection_reason, review.moderated_at = ModerationStatus.REJECTED, reason, now
        review.featured = False
        if review.reward_activity_id is not None:
            key = f"review:{review.pk}:{review.reward_rounds}"
            for activity_id in Activity.objects.filter(source_key__in=[key, f"{key}:photo"]).values_list("pk",
                                                                                                         flat=True):
                activity_reverse(activity_id=activity_id, description=f"Review of {review.product.name} rejected",
                                 reason=reason, actor_user=moderator)
            review.reward_activity_id = None
        review.save()
        events.emit("review.rejected", member_id=review.member_id, data={
            "review_id": review.pk, "sku": review.product.sku, "reason": reason})
        log(subject=f"review:{review.pk}", action="rejected", actor_user=moderator, reason=reason,
            flags=review.flags)
        notify(purpose=Purpose.TRANSACTIONAL, notes=[wording("review_rejected").note(
            review.member_id, reverse("community:review", args=[review.product.sku]), product=review.product.name,
            reason=reason)])
        if unpublished:
            ratings_remove(reviews=[(review.product_id, review.rating)])
    return review


def reviews_moderate(*, review_ids: list[int], approve: bool, moderator: User | None, reason: str = "") -> int:
    """Approve or reject many reviews (the admin's bulk actions): each in its own transaction, so one
    review's trouble does not undo the others. Returns how many changed."""
    if not approve and not (reason or "").strip():
        raise Invalid(_("Say why, for the members."), fields={"reason": _("A reason is required to reject.")})
    changed = 0
    for review_id in sorted(review_ids):
        before = Review.objects.filter(pk=review_id).values_list("status", flat=True).first()
        wanted = ModerationStatus.APPROVED if approve else ModerationStatus.REJECTED
        if before is None or before == wanted:
            continue
        if approve:
            review_approve(review_id=review_id, moderator=moderator, reason=reason)
        else:
            review_reject(review_id=review_id, moderator=moderator, reason=reason)
        changed += 1
    return changed


def review_reply(*, review_id: int, moderator: User, text: str) -> Review:
    """A public reply from the store under the review (empty text removes it)."""
    text = (text or "").strip()
    with transaction.atomic():
        review = Review.objects.select_for_update().get(pk=review_id)
        review.staff_reply = text
        review.staff_reply_at = timezone.now() if text else None
        review.save(update_fields=["staff_reply", "staff_reply_at"])
        log(subject=f"review:{review.pk}", action="replied" if text else "reply_removed", actor_user=moderator,
            reason=text)
    return review


def review_feature(*, review_id: int, moderator: User, featured: bool) -> Review:
    """Show (or stop showing) a published review as a testimonial on the community page."""
    with transaction.atomic():
        review = Review.objects.select_for_update().get(pk=review_id)
        if featured and review.status != ModerationStatus.APPROVED:
            raise Conflict(_("Only published reviews can be featured."), code="not_published",
                           fields={"featured": _("Publish the review first.")})
        review.featured = featured
        review.save(update_fields=["featured"])
        log(subject=f"review:{review.pk}", action="featured" if featured else "unfeatured", actor_user=moderator)
    return review


# --- What other members do ------------------------------------------------------------------------

def _published_review_of_another(*, review_id: int, member: Member, verb: str) -> Review:
    review = Review.objects.filter(pk=review_id, status=ModerationStatus.APPROVED).first()
    if review is None:
        raise NotFound(_("No such review."), fields={"review": _("No published review here.")})
    if review.member_id == member.pk:
        message = _("You cannot vote for your own review.") if verb == "vote for" else \
            _("You cannot report your own review.")
        raise Conflict(message, code="own_review", fields={"review": message})
    return review


def review_vote_helpful(*, review_id: int, member: Member) -> Review:
    """Mark another member's published review helpful, once. The author's ``helpful_vote_received``
    activity counts towards badges and may earn points."""
    review = _published_review_of_another(review_id=review_id, member=member, verb="vote for")
    try:
        with transaction.atomic():
            vote = HelpfulVote.objects.create(review=review, member=member)
            Review.objects.filter(pk=review.pk).update(helpful_count=F("helpful_count") + 1,
                                                        relevance=F("relevance") + 2)
            activities_record(items=[ActivityInput(
                member_id=review.member_id, type=ActivityType.HELPFUL_VOTE_RECEIVED, source_key=f"helpful:{vote.pk}",
                occurred_at=vote.created_at, description="Someone found your review helpful",
                properties={"review_id": review.pk})])
    except IntegrityError:
        raise Conflict(_("You already marked this review helpful."), code="already_voted",
                       fields={"review": _("Already marked helpful.")}) from None
    review.refresh_from_db()
    return review


def review_report(*, review_id: int, member: Member, reason: str) -> Review:
    """Tell staff a review is inappropriate, once per member. The review is flagged; after
    ``REPORTS_TO_HOLD`` reports it is held back from the page until a moderator decides."""
    reason = " ".join((reason or "").split())
    if len(reason) < 3:
        raise Invalid(_("Tell us what is wrong."), fields={"reason": _("Tell us what is wrong.")})
    review = _published_review_of_another(review_id=review_id, member=member, verb="report")
    try:
        with transaction.atomic():
            Report.objects.create(review=review, member=member, reason=reason[:500])
            review = Review.objects.select_for_update().get(pk=review.pk)
            review.report_count += 1
            if Flag.REPORTED not in review.flags:
                review.flags = [*review.flags, Flag.REPORTED]
            held = review.report_count >= REPORTS_TO_HOLD and review.status == ModerationStatus.APPROVED
            if held:
                review.status = ModerationStatus.PENDING
                log(subject=f"review:{review.pk}", action="held",
                    reason=f"{review.report_count} members reported it.", flags=review.flags)
            review.save(update_fields=["report_count", "flags", "status"])
            if held:
                ratings_remove(reviews=[(review.product_id, review.rating)])
    except IntegrityError:
        raise Conflict(_("You already reported this review."), code="already_reported",
                       fields={"review": _("Already reported.")}) from None
    return review
