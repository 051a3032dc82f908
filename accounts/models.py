from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=email.strip().lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields["is_staff"] = True
        extra_fields["is_superuser"] = True
        return self._create_user(email, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """Who logs in: members in the portal and staff in the admin. Email is the login."""

    email = models.EmailField("email address", unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self):
        return self.email

    def get_full_name(self):
        return self.name or self.email

    def get_short_name(self):
        return self.name or self.email


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    NONE = "none", _("None")


class Purpose(models.TextChoices):
    OFFERS = "offers", _("Offers and news")
    REMINDERS = "reminders", _("Points reminders")
    SURVEYS = "surveys", _("Surveys and review requests")
    STATEMENTS = "statements", _("Monthly points statement")


class Member(models.Model):
    """A shopper in the program: the loyalty identity, with or without a portal login.

    A partner can create a member before the shopper ever signs up; when they sign up and verify
    the same email, the login is attached to this row (``accounts.services.member_attach_user``).
    Balances are caches of the points ledger, written only by ``rewards.services`` under a row lock.
    """

    user = models.OneToOneField(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="member"
    )
    email = models.EmailField(blank=True, help_text=_("Stored lower-case; unique when present."))
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    birthday = models.DateField(null=True, blank=True)
    phone = models.CharField(max_length=16, blank=True, help_text=_("E.164, for example +441234567890."))
    offers_channel = models.CharField(max_length=5, choices=Channel.choices, default=Channel.NONE)
    reminders_channel = models.CharField(max_length=5, choices=Channel.choices, default=Channel.EMAIL)
    surveys_channel = models.CharField(max_length=5, choices=Channel.choices, default=Channel.NONE)
    statements_channel = models.CharField(max_length=5, choices=Channel.choices, default=Channel.NONE,
                                          help_text=_("The monthly statement: sent only to members who ask for it."))
    referral_code = models.CharField(max_length=16, unique=True)
    # A database default too: bulk inserts (imports, the partner batch) name their columns.
    language = models.CharField(
        max_length=8, blank=True, default="", db_default="",
        help_text=_("The language the member reads (one of LANGUAGES: en, de): the portal after they log in, and "
        "every message we send them. Empty: the program's language, English."))

    points_available = models.BigIntegerField(default=0)
    points_pending = models.BigIntegerField(default=0)
    # Points a refund took back after they had been spent; repaid first from later earnings.
    points_owed = models.BigIntegerField(default=0)
    last_activity_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("email"), condition=~Q(email=""), name="member_email_ci_unique"
            ),
            models.CheckConstraint(condition=Q(points_available__gte=0), name="member_available_gte_0"),
            models.CheckConstraint(condition=Q(points_pending__gte=0), name="member_pending_gte_0"),
            models.CheckConstraint(condition=Q(points_owed__gte=0), name="member_owed_gte_0"),
        ]

    def __str__(self):
        if self.erased_at:
            return f"Erased member #{self.pk}"
        return self.full_name or self.email or f"Member #{self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def channel_for(self, purpose: str) -> str:
        return getattr(self, f"{purpose}_channel")


class Partner(models.Model):
    """A store backend, POS or coalition brand that talks to the API."""

    name = models.CharField(max_length=120, unique=True)
    is_active = models.BooleanField(default=True)
    shares_members = models.ManyToManyField(
        "self", symmetrical=True, blank=True,
        help_text=_("Partners that are the same store as this one (its web shop and its point of sale): they may "
        "link each other's members by email. Off for everyone else, who get 409 email_taken."),
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    # DRF treats the authenticated principal like a user.
    is_authenticated = True


class ExternalId(models.Model):
    """The partner's own id for one of its customers, who is one of our members."""

    # No index of its own: the unique (partner, external_id) index serves lookups by partner.
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="external_ids", db_index=False)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="external_ids")
    external_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partner", "external_id"], name="external_id_unique"),
            models.UniqueConstraint(fields=["partner", "member"], name="external_id_one_per_member"),
        ]

    def __str__(self):
        return f"{self.partner}: {self.external_id}"


class Scope(models.TextChoices):
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    ACTIVITIES_WRITE = "activities:write"
    POINTS_ADJUST = "points:adjust"
    REWARDS_READ = "rewards:read"
    REWARDS_REDEEM = "rewards:redeem"
    PRODUCTS_WRITE = "products:write"
    REVIEWS_READ = "reviews:read"
    INSIGHTS_READ = "insights:read"
    WEBHOOKS_MANAGE = "webhooks:manage"
    EMBED_MANAGE = "embed:manage"


class ApiKey(models.Model):
    """A partner's secret. Only a SHA-256 of the key is stored; the key is shown once.

    Keys carry 256 bits of randomness, so a fast hash is enough: nobody can brute-force the
    preimage, and a slow password hasher would add tens of milliseconds to every API call.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=120, help_text=_("What the key is for, for example 'Shopify sync'."))
    prefix = models.CharField(max_length=12, help_text=_("The first characters of the key, to recognise it."))
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    rate_limit = models.CharField(
        max_length=20, blank=True,
        help_text=_("Requests allowed to this key, for example 600/min; empty for the API_RATE_LIMIT default."),
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API key")

    def __str__(self):
        return f"{self.partner} / {self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ConsentEvent(models.Model):
    """Each change of a communication preference, kept as proof of consent."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="consent_events")
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    channel = models.CharField(max_length=5, choices=Channel.choices)
    source = models.CharField(max_length=20)
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.purpose}: {self.channel} ({self.source})"


class AuditLog(models.Model):
    """Who changed what, when and why: staff and partner actions on the program and its members."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=60, db_index=True)
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_logs")
    subject = models.CharField(max_length=120, blank=True, help_text=_("What was changed, e.g. 'api_key:12'."))
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.subject}"

    @property
    def actor(self) -> str:
        if self.actor_user_id:
            return str(self.actor_user)
        if self.actor_partner_id:
            return f"partner {self.actor_partner}"
        return "system"


class IdempotencyRecord(models.Model):
    """The first answer to a partner's write sent with an ``Idempotency-Key``, replayed on retries."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["partner", "key"], name="idempotency_key_unique")]

    def __str__(self):
        return f"{self.partner_id}:{self.key}"


class Notification(models.Model):
    """Something the program tells a member: shown in the portal, and emailed if they agreed."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="notifications", db_index=False)
    kind = models.CharField(max_length=30)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["member", "-created_at"])]

    def __str__(self):
        return self.title
