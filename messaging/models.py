"""The outbox of every message the program sends: to members (e-mail or SMS, by their choice per
purpose), to friends they invite and to staff. A row is written in the same transaction as the
change that asks for it and sent after commit on the ``messages`` queue; a worker that dies
leaves its claim to expire and the message to be sent again (``messaging.services``)."""

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Member


class Purpose(models.TextChoices):
    """What a message is for. Marketing purposes count against the weekly cap, wait out quiet
    hours and carry one-click unsubscribe; the others are sent at once."""

    TRANSACTIONAL = "transactional", _("About the member's own account and doings")
    REMINDERS = "reminders", _("Points reminders")
    OFFERS = "offers", _("Offers and news")
    SURVEYS = "surveys", _("Surveys")
    REVIEWS = "reviews", _("Review requests")
    REFERRALS = "referrals", _("Invitations from a friend")
    STATEMENTS = "statements", _("Monthly points statement")


MARKETING = frozenset({Purpose.REMINDERS, Purpose.OFFERS, Purpose.SURVEYS, Purpose.REVIEWS, Purpose.STATEMENTS})
# The member's own choice of channel for a purpose (accounts.Member.<field>).
PREFERENCE_FIELD = {Purpose.REMINDERS: "reminders_channel", Purpose.OFFERS: "offers_channel",
                    Purpose.SURVEYS: "surveys_channel", Purpose.REVIEWS: "surveys_channel",
                    Purpose.STATEMENTS: "statements_channel"}


class MessageChannel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS")


class MessageStatus(models.TextChoices):
    QUEUED = "queued", _("Waiting to be sent")
    SENT = "sent", _("Sent")
    SKIPPED = "skipped", _("Not sent")
    FAILED = "failed", _("Failed")


class Message(models.Model):
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages",
                               db_index=False, help_text=_("Empty for a friend invited or for staff."))
    to = models.CharField(max_length=254, help_text=_("The address or phone number it goes to."))
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    channel = models.CharField(max_length=5, choices=MessageChannel.choices, default=MessageChannel.EMAIL)
    template = models.CharField(max_length=60, help_text=_("messages/<template>.html"))
    context = models.JSONField(default=dict, blank=True)
    key = models.CharField(max_length=200, unique=True,
                           help_text=_("One message per key, however often it is asked for."))
    priority = models.PositiveSmallIntegerField(default=50,
                                                help_text=_("Higher goes first when two compete for the cap."))
    status = models.CharField(max_length=8, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    send_after = models.DateTimeField(default=timezone.now, help_text=_("Quiet hours and the cap move this on."))
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    provider_id = models.CharField(max_length=200, blank=True, help_text=_("The provider's id for the sent message."))
    error = models.CharField(max_length=300, blank=True, help_text=_("Why it was not sent, or the last failure."))
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["send_after"], condition=Q(status="queued"), name="message_due"),
            models.Index(fields=["member", "-created_at"], name="message_member"),
            models.Index(fields=["member", "sent_at"], condition=Q(status="sent"), name="message_member_sent"),
        ]

    def __str__(self):
        return f"{self.template} to {self.to} ({self.get_status_display().lower()})"


class Suppression(models.Model):
    """An address or number nothing is sent to: it bounced, its owner complained, unsubscribed
    from everything (a friend invited) or answered STOP."""

    address = models.CharField(max_length=254, unique=True, help_text=_("Lower-case e-mail, or an E.164 number."))
    reason = models.CharField(max_length=20)
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.address} ({self.reason})"


class MessagingSettings(models.Model):
    """How often the program may write to a member: a single row (pk 1), changed through
    ``messaging.services.messaging_settings_update`` (audited)."""

    weekly_cap = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1)],
        help_text=_("Most marketing messages (reminders, offers, surveys, review requests) one member gets in any "
        "seven days. Messages about their own account are not counted."))
    quiet_from = models.TimeField(null=True, blank=True, help_text=_("Quiet hours start, in the program's time zone "
                                  "(for example 21:00): marketing messages wait until they end. Empty: none."))
    quiet_until = models.TimeField(null=True, blank=True, help_text=_("Quiet hours end (for example 08:00)."))
    expiry_reminder_days = models.PositiveSmallIntegerField(
        default=14, help_text=_("Remind members this many days before their points expire (0: never). The "
        "points.expiring event goes to webhooks at the same time, for stores that send their own mail."))
    expiry_reminder_min_points = models.PositiveIntegerField(
        default=100, validators=[MinValueValidator(1)],
        help_text=_("...when at least this many points expire (a smaller amount is not worth a message)."))
    post_purchase_days = models.PositiveSmallIntegerField(
        default=2, help_text=_("Thank members for an order this many days after it, with the points it earned "
        "(0: never)."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = _("messaging settings")

    def __str__(self):
        return "Messaging settings"


class LifecycleNotice(models.Model):
    """A member was told something the program tells once: that points expire on a day
    (``points_expiring``, key: the day), that a reward is within their points (``reward_unlocked``,
    key: the reward). However often the job runs, one notice per member, kind and key."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=30)
    key = models.CharField(max_length=60)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "kind", "key"], name="lifecycle_notice_once")]

    def __str__(self):
        return f"{self.kind} {self.key} to member #{self.member_id}"


class Delivery(models.TextChoices):
    SEND = "send", _("We send it (e-mail or SMS, as the member chose)")
    STORE = "store", _("The store sends it: a campaign.message webhook with the words")
    OFF = "off", _("Not sent (the portal notification stays)")


class MessageKindSettings(models.Model):
    """Staff's choices for one kind of message (``messaging.catalogue.KINDS``): its words, with
    the kind's placeholders only, and, for lifecycle messages, who sends it. Empty words: the
    defaults. Changed through ``messaging.services.message_kind_update`` (audited)."""

    kind = models.CharField(max_length=40, unique=True)
    delivery = models.CharField(max_length=5, choices=Delivery.choices, default=Delivery.SEND)
    title = models.CharField(max_length=200, blank=True, help_text=_("The subject, and the notification's title."))
    body = models.TextField(blank=True, max_length=2000)
    translations = models.JSONField(
        default=dict, blank=True,
        help_text=_('Staff\'s words in the other languages: {"de": {"title": "...", "body": "..."}}. The title and '
        "body above are the program's language's (English). A language without words of staff's gets its own "
        "default words, never another language's."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind"]
        verbose_name = _("kind of message")
        verbose_name_plural = _("kinds of message")

    def __str__(self):
        from messaging.catalogue import KINDS

        return str(KINDS[self.kind].label) if self.kind in KINDS else self.kind
