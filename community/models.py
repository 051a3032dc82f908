"""Community: products and their reviews with photos, questions and answers, moderation, and members'
public profiles and staff spotlights."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Member, Partner
from core.storage import avatar_path, private_storage, review_photo_path


class PublicProfile(models.Model):
    """What a member chose to show others. Nothing about a member appears in public without it."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, primary_key=True, related_name="public_profile")
    is_public = models.BooleanField(default=False)
    display_name = models.CharField(max_length=40, blank=True)
    avatar = models.ImageField(upload_to=avatar_path, storage=private_storage, blank=True,
                               help_text=_("Seen by others only while the profile is public."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["member"], condition=models.Q(is_public=True), name="profile_public")]

    def __str__(self):
        return self.display_name or f"Member #{self.member_id}"


class Spotlight(models.Model):
    """A member staff chose to feature on the community page (shown only if their profile is public)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="spotlights")
    headline = models.CharField(max_length=120)
    text = models.TextField(blank=True)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-starts_at", "-id"]

    def __str__(self):
        return self.headline


# --- Products and reviews -------------------------------------------------------------------------


class Product(models.Model):
    """A product known by its SKU: from partners (``POST /api/v1/products/``) or from order lines."""

    sku = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=255)
    category = models.CharField(max_length=100, blank=True)
    url = models.URLField(max_length=500, blank=True, help_text=_("The product's page in the store."))
    image_url = models.URLField(max_length=500, blank=True)
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                help_text=_("Who last wrote it; empty when learnt from order lines."))
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.sku})"


class CommunitySettings(models.Model):
    """The community's settings: a single row (pk 1), changed through ``community_settings_update``."""

    allow_unverified_reviews = models.BooleanField(
        default=True, help_text=_("Members may review products they did not buy from us (shown without the "
        "verified buyer mark)."))
    banned_words = models.TextField(
        blank=True, help_text=_("One word or phrase per line. Reviews, questions and answers containing one are "
        "flagged; changing the list re-checks what is already published."))
    posts_per_hour = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1)],
        help_text=_("Most reviews, questions and answers one member may post in an hour."))
    burst_count = models.PositiveIntegerField(
        default=3, validators=[MinValueValidator(2)],
        help_text=_("Flag a member's review when it is their Nth within the burst window..."))
    burst_minutes = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1)],
                                                help_text=_("...of this many minutes."))
    rejection_reasons = models.TextField(
        blank=True, default="Please keep to the product itself.\nPlease leave out personal details (names, phone "
        "numbers, addresses).\nPlease leave out links and advertising.\nPlease keep it polite.",
        help_text=_("The reasons moderators pick from to reject in one click from the queue, one per line (the "
        "member sees the reason)."))
    reply_templates = models.TextField(
        blank=True, default="Thank you for taking the time to write this review.\nThank you for your kind words; we "
        "are glad it suits you.\nWe are sorry it disappointed you: please write to us, and we will put it right.",
        help_text=_("Saved replies moderators pick from when they answer a review in public, one per line (they can "
        "change the words before saving)."))
    auto_publish_min_rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text=_("Publish at once, without waiting for a moderator, reviews by verified buyers with at least "
        "this many stars, no photo and no flag (a banned word, a repeated text, a burst, a report). Empty: every "
        "review waits for a moderator."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = _("community settings")

    def __str__(self):
        return "Community settings"

    def reasons(self) -> list[str]:
        return [line.strip() for line in self.rejection_reasons.splitlines() if line.strip()]

    def replies(self) -> list[str]:
        return [line.strip() for line in self.reply_templates.splitlines() if line.strip()]

    def banned(self) -> list[str]:
        return [line.strip().lower() for line in self.banned_words.splitlines() if line.strip()]


class ModerationStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for moderation")
    APPROVED = "approved", _("Published")
    REJECTED = "rejected", _("Rejected")


class Flag(models.TextChoices):
    BANNED_WORD = "banned_word", _("Banned word")
    LINK = "link", _("Contains a link")
    REPEATED_TEXT = "repeated_text", _("Same text as another post")
    BURST = "burst", _("Many posts in a short time")
    REPORTED = "reported", _("Reported by members")


class Review(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reviews")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="reviews", db_index=False)
    rating = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    title = models.CharField(max_length=120)
    text = models.TextField(max_length=5000)
    status = models.CharField(max_length=10, choices=ModerationStatus.choices, default=ModerationStatus.PENDING)
    verified_buyer = models.BooleanField(default=False)
    flags = models.JSONField(default=list, blank=True)
    rejection_reason = models.TextField(blank=True, help_text=_("Shown to the member."))
    # The points: at most one live reward per review. Rejecting reverses it and clears this; a later
    # approval after an edit rewards again under the next round's key.
    reward_activity = models.ForeignKey("rewards.Activity", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    reward_rounds = models.PositiveIntegerField(default=0)
    staff_reply = models.TextField(blank=True)
    staff_reply_at = models.DateTimeField(null=True, blank=True)
    featured = models.BooleanField(default=False, help_text=_("Shown as a testimonial on the community page."))
    photo_count = models.PositiveSmallIntegerField(default=0)
    helpful_count = models.PositiveIntegerField(default=0)
    report_count = models.PositiveIntegerField(default=0)
    relevance = models.FloatField(default=0, help_text=_("See community.services.moderation.relevance."))
    fingerprint = models.CharField(max_length=32, blank=True, db_index=True, help_text=_("To spot repeated text."))
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(default=timezone.now, help_text=_("Last written or edited by the member."))
    published_at = models.DateTimeField(null=True, blank=True)
    moderated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "product"], name="one_review_per_member_product"),
            models.CheckConstraint(condition=models.Q(rating__gte=1, rating__lte=5), name="review_rating_1_to_5"),
        ]
        indexes = [
            models.Index(fields=["product", "status", "-relevance"], name="review_relevance"),
            models.Index(fields=["product", "status", "-published_at"], name="review_newest"),
            models.Index(fields=["product", "status", "-helpful_count"], name="review_helpful"),
            models.Index(fields=["product", "status", "rating"], name="review_rating"),
            models.Index(fields=["status", "submitted_at"], name="review_queue"),
        ]

    def __str__(self):
        return f"{self.title} ({self.rating}/5)"

    @property
    def rewarded(self) -> bool:
        return self.reward_activity_id is not None


class ProductRating(models.Model):
    """A product's rating summary: how many published reviews it has, their stars added up, and how
    many of them give each number of stars. Kept by the review services in the transaction of every
    change that publishes a review or takes one off the page (``community.services.ratings``), so the
    product page reads one row instead of counting its reviews. No row: no published review yet."""

    product = models.OneToOneField(Product, on_delete=models.CASCADE, primary_key=True,
                                   related_name="rating_summary")
    count = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)  # their stars added up
    stars_1 = models.PositiveIntegerField(default=0)
    stars_2 = models.PositiveIntegerField(default=0)
    stars_3 = models.PositiveIntegerField(default=0)
    stars_4 = models.PositiveIntegerField(default=0)
    stars_5 = models.PositiveIntegerField(default=0)

    class Meta:
        # The three figures cannot drift apart: a change that forgot one of them fails.
        constraints = [
            models.CheckConstraint(condition=models.Q(count=models.F("stars_1") + models.F("stars_2")
                                                      + models.F("stars_3") + models.F("stars_4")
                                                      + models.F("stars_5")),
                                   name="product_rating_count_of_stars"),
            models.CheckConstraint(condition=models.Q(total=models.F("stars_1") + 2 * models.F("stars_2")
                                                      + 3 * models.F("stars_3") + 4 * models.F("stars_4")
                                                      + 5 * models.F("stars_5")),
                                   name="product_rating_total_of_stars"),
        ]

    def __str__(self):
        return f"{self.count} reviews of product {self.product_id}"


class ReviewPhoto(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="photos")
    # Private until the review is published (see community.views.private_media).
    image = models.ImageField(upload_to=review_photo_path, storage=private_storage)
    thumbnail = models.ImageField(upload_to=review_photo_path, storage=private_storage)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["review", "position", "id"]

    def __str__(self):
        return f"Photo {self.position + 1} of review {self.review_id}"


class HelpfulVote(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="votes")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", db_index=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "review"], name="one_helpful_vote_per_review")]

    def __str__(self):
        return f"Helpful: review {self.review_id}"


class Report(models.Model):
    """A member telling staff a review is inappropriate; the review gets the ``reported`` flag."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="reports")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", db_index=False)
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "review"], name="one_report_per_review")]

    def __str__(self):
        return self.reason[:60]


class Question(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="questions")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="questions", db_index=False)
    text = models.TextField(max_length=1000)
    fingerprint = models.CharField(max_length=32, blank=True, db_index=True)
    status = models.CharField(max_length=10, choices=ModerationStatus.choices, default=ModerationStatus.PENDING)
    flags = models.JSONField(default=list, blank=True)
    rejection_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    moderated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["product", "status", "-created_at"], name="question_product")]

    def __str__(self):
        return self.text[:60]


class Answer(models.Model):
    """An answer by a verified buyer of the product or by staff (``member`` is empty then)."""

    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="answers")
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                               db_index=False)
    staff_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    text = models.TextField(max_length=2000)
    fingerprint = models.CharField(max_length=32, blank=True, db_index=True)
    verified_buyer = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=ModerationStatus.choices, default=ModerationStatus.PENDING)
    flags = models.JSONField(default=list, blank=True)
    rejection_reason = models.TextField(blank=True)
    helpful_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    moderated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-helpful_count", "created_at"]

    def __str__(self):
        return self.text[:60]


class AnswerVote(models.Model):
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="votes")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", db_index=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "answer"], name="one_vote_per_answer")]

    def __str__(self):
        return f"Helpful: answer {self.answer_id}"


class ModerationLog(models.Model):
    """Every moderation decision: what, who (staff, or the system for automatic ones), when and why."""

    subject = models.CharField(max_length=40, help_text=_("review:12, question:3, answer:7"))
    action = models.CharField(max_length=30)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    reason = models.TextField(blank=True)
    flags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["subject", "-created_at"], name="moderation_subject")]

    def __str__(self):
        return f"{self.subject} {self.action}"


class ReviewRequest(models.Model):
    """The one email inviting a member to review what they bought in an order."""

    order = models.OneToOneField("rewards.Order", on_delete=models.CASCADE, primary_key=True, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", db_index=False)
    skus = models.JSONField(default=list)
    sent_at = models.DateTimeField(default=timezone.now)
    claim = models.CharField(max_length=32, help_text=_("Which run of the task sent it (two runs never both send)."))

    def __str__(self):
        return f"Review request for order {self.order_id}"
