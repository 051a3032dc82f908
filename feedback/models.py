"""Feedback: surveys (NPS, CSAT, ratings, choices, text) with their answers and follow-ups, and
referrals with their fraud checks."""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Member


class Audience(models.TextChoices):
    EVERYONE = "everyone", _("Every member")
    TIER = "tier", _("Members of one tier")
    POST_PURCHASE = "post_purchase", _("Members whose order is N days old")


class Survey(models.Model):
    name = models.CharField(max_length=120)
    intro = models.TextField(blank=True, help_text=_("Shown above the questions."))
    audience = models.CharField(max_length=20, choices=Audience.choices, default=Audience.EVERYONE)
    tier = models.ForeignKey("rewards.Tier", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                             help_text=_("For the tier audience."))
    days_after_order = models.PositiveIntegerField(
        default=7, help_text=_("Post-purchase audience: members whose latest order is at least this many days old "
        "(and at most 30 days more)."))
    repeat_every_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Empty: each member answers once. Otherwise a new round opens every this many days."))
    opens_at = models.DateTimeField(default=timezone.now)
    closes_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-opens_at", "-id"]

    def __str__(self):
        return self.name

    def is_open(self, now) -> bool:
        return self.is_active and self.opens_at <= now and (self.closes_at is None or now < self.closes_at)

    def round_at(self, now) -> int:
        """Round 1 for a survey answered once; else 1 + the number of whole intervals since opening."""
        if not self.repeat_every_days:
            return 1
        return 1 + max(0, int((now - self.opens_at).total_seconds() // (self.repeat_every_days * 86400)))


class QuestionKind(models.TextChoices):
    NPS = "nps", _("Net Promoter Score (0 to 10)")
    CSAT = "csat", _("Customer satisfaction (1 to 5)")
    RATING = "rating", _("Rating scale (1 to N)")
    SINGLE = "single", _("Single choice")
    MULTIPLE = "multiple", _("Multiple choice")
    TEXT = "text", _("Free text")


SCORED = (QuestionKind.NPS, QuestionKind.CSAT, QuestionKind.RATING)
CHOICE = (QuestionKind.SINGLE, QuestionKind.MULTIPLE)


class SurveyQuestion(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=10, choices=QuestionKind.choices)
    text = models.CharField(max_length=300)
    required = models.BooleanField(default=True)
    options = models.JSONField(default=list, blank=True, help_text=_("Choices: a list of labels."))
    scale_max = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(2)],
                                                 help_text=_("Rating scale: the highest score."))
    # A follow-up is shown only when the answer to an earlier scored question is within a range.
    show_if_question = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE,
                                         related_name="follow_ups", help_text=_("Follow-up of this scored question."))
    show_if_min = models.SmallIntegerField(null=True, blank=True)
    show_if_max = models.SmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["survey", "position", "id"]

    def __str__(self):
        return self.text

    def score_range(self) -> tuple[int, int] | None:
        return {QuestionKind.NPS: (0, 10), QuestionKind.CSAT: (1, 5)}.get(self.kind) or (
            (1, self.scale_max) if self.kind == QuestionKind.RATING else None)

    def shown_for(self, parent_score: int | None) -> bool:
        if self.show_if_question_id is None:
            return True
        if parent_score is None:
            return False
        low = self.show_if_min if self.show_if_min is not None else -1
        high = self.show_if_max if self.show_if_max is not None else 1000
        return low <= parent_score <= high


class ResponseStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", _("Started")
    COMPLETED = "completed", _("Completed")


class SurveyResponse(models.Model):
    """One member's answers to one round of a survey."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="responses")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="survey_responses", db_index=False)
    round = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=12, choices=ResponseStatus.choices, default=ResponseStatus.IN_PROGRESS)
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The NPS answer, kept on the response too: results and the follow-up list read it without a join.
    nps = models.SmallIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "survey", "round"], name="one_response_per_round")]
        indexes = [models.Index(fields=["survey", "status", "completed_at"], name="response_results")]

    def __str__(self):
        return f"{self.survey} round {self.round}: member {self.member_id}"


class SurveyAnswer(models.Model):
    """An answer to a question: a score, a chosen option (one row per option ticked), or a text."""

    response = models.ForeignKey(SurveyResponse, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(SurveyQuestion, on_delete=models.CASCADE, related_name="answers")
    option = models.SmallIntegerField(default=-1, help_text=_("Index into the question's options; -1 otherwise."))
    score = models.SmallIntegerField(null=True, blank=True)
    text = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["response", "question", "option"], name="one_answer")]
        indexes = [models.Index(fields=["question", "score"], name="answer_score"),
                   models.Index(fields=["question", "option"], name="answer_option")]

    def __str__(self):
        return f"Answer to {self.question_id}"


class SurveyInvite(models.Model):
    """The one email inviting a member to a survey round."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", db_index=False)
    round = models.PositiveIntegerField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "survey", "round"], name="one_invite_per_round")]

    def __str__(self):
        return f"Invite to {self.survey_id} round {self.round}"


class FollowUp(models.Model):
    """A detractor (NPS 0 to 6) for staff to contact, until someone marks it handled."""

    response = models.OneToOneField(SurveyResponse, on_delete=models.CASCADE, related_name="follow_up")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    score = models.SmallIntegerField()
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    note = models.TextField(blank=True, help_text=_("What was done."))

    class Meta:
        ordering = ["handled_at", "-created_at"]

    def __str__(self):
        return f"Follow up member {self.member_id} (NPS {self.score})"


# --- Referrals ------------------------------------------------------------------------------------


class RewardKind(models.TextChoices):
    POINTS = "points", _("Points")
    COUPON = "coupon", _("A coupon for a reward")
    NONE = "none", _("Nothing")


class ReferralSettings(models.Model):
    """The referral program's settings: a single row (pk 1)."""

    attribution_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)],
        help_text=_("How long after clicking a referral link a sign-up still counts (kept in a cookie)."))
    min_order_value = models.DecimalField(max_digits=12, decimal_places=2, default=20,
                                          help_text=_("The friend's first order must be at least this much."))
    referrer_reward = models.CharField(max_length=10, choices=RewardKind.choices, default=RewardKind.POINTS)
    referrer_points = models.PositiveIntegerField(default=500)
    referrer_coupon_reward = models.ForeignKey("rewards.Reward", null=True, blank=True, on_delete=models.PROTECT,
                                               related_name="+")
    friend_reward = models.CharField(max_length=10, choices=RewardKind.choices, default=RewardKind.POINTS)
    friend_points = models.PositiveIntegerField(default=250)
    friend_coupon_reward = models.ForeignKey("rewards.Reward", null=True, blank=True, on_delete=models.PROTECT,
                                             related_name="+")
    friend_offer = models.CharField(max_length=200, default="250 welcome points on the first order",
                                    help_text=_("What the friend gets, read by the friend and by the member who "
                                    "invites: 'the first order', not 'your'."))
    max_conversions_per_month = models.PositiveIntegerField(
        default=10, help_text=_("Conversions one referrer may earn per calendar month; more are void."))
    shared_signals_threshold = models.PositiveIntegerField(
        default=3, validators=[MinValueValidator(2)],
        help_text=_("Flag a sign-up when this many of a referrer's sign-ups in 7 days share a device or an "
        "address pattern."))
    invitations_per_day = models.PositiveIntegerField(default=10)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = _("referral settings")

    def __str__(self):
        return "Referral settings"


class ReferralStatus(models.TextChoices):
    SIGNED_UP = "signed_up", _("Signed up")
    HELD = "held", _("Flagged, waiting for staff")
    CONVERTED = "converted", _("Ordered; rewards pending")
    REWARDED = "rewarded", _("Rewarded")
    VOID = "void", _("Void")


class Referral(models.Model):
    referrer = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="referrals_made")
    friend = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="referral")
    source = models.CharField(max_length=10, help_text=_("link, code or api"))
    status = models.CharField(max_length=10, choices=ReferralStatus.choices, default=ReferralStatus.SIGNED_UP)
    flags = models.JSONField(default=list, blank=True)
    device = models.CharField(max_length=64, blank=True, help_text=_("A hash of the sign-up's network and browser."))
    email_pattern = models.CharField(max_length=120, blank=True)
    order = models.ForeignKey("rewards.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    order_available_at = models.DateTimeField(null=True, blank=True,
                                              help_text=_("When the order's return window ends."))
    referrer_activity = models.ForeignKey("rewards.Activity", null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+")
    friend_activity = models.ForeignKey("rewards.Activity", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    held_conversion = models.BooleanField(default=False,
                                          help_text=_("Converted while held: rewards wait for approval."))
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    void_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    converted_at = models.DateTimeField(null=True, blank=True)
    rewarded_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["referrer", "created_at"], name="referral_referrer"),
                   models.Index(fields=["status", "order_available_at"], name="referral_due")]

    def __str__(self):
        return f"{self.referrer_id} -> {self.friend_id} ({self.status})"


class Invitation(models.Model):
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    email = models.EmailField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["member", "sent_at"], name="invitation_member")]

    def __str__(self):
        return self.email


class PendingReferral(models.Model):
    """A code given at sign-up, kept until the email is verified and the member exists."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="+")
    code = models.CharField(max_length=20)
    source = models.CharField(max_length=10)
    device = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.code
