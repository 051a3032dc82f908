"""The program's settings, active earning rules, tiers and badges, kept in each process.

Every order needs the settings and rules, every check of a member's progress the tiers and
badges; reading them from the database each time would double the cost of a small order. A
process keeps them until they change (``core.process_cache``): the service that changes a rule, a
tier, a badge, a challenge or a setting calls ``program_changed()``, and every process reads them
again within 0.1 s of the change's commit (at its next task).
"""

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from django.conf import settings as django_settings
from django.db.models import Q
from django.utils import timezone

from core.colours import mix
from core.process_cache import ProcessCopy
from rewards.models import Badge, Challenge, EarningRule, ExpiryPolicy, ProgramSettings, Tier
from rewards.rules import RuleSpec

MEMBERS_ONLY_LATE = timedelta(days=30)
# Work reported this late still counts towards a challenge if it happened inside its dates.
CHALLENGE_LATE = timedelta(days=2)


@dataclass(frozen=True)
class Brand:
    """How the program looks: its name, logo and colours (``ProgramSettings``), with the shades
    the portal's style sheet and the e-mails use."""

    name: str
    logo_url: str  # absolute (e-mails are read far from the site), or "" for none
    colour: str
    colour_dark: str
    colour_tint: str
    accent: str
    accent_tint: str
    support_email: str = ""

    @classmethod
    def of(cls, settings: ProgramSettings) -> "Brand":
        logo = ""
        if settings.logo:
            logo = settings.logo.url
            if logo.startswith("/"):
                logo = django_settings.SITE_URL + logo
        return cls(name=settings.name or django_settings.PROGRAM_NAME, logo_url=logo, colour=settings.colour,
                   colour_dark=mix(settings.colour, "#000000", 0.2), colour_tint=mix(settings.colour, "#ffffff", 0.9),
                   accent=settings.accent_colour, accent_tint=mix(settings.accent_colour, "#ffffff", 0.88),
                   support_email=settings.support_email)


@dataclass(frozen=True)
class Program:
    settings: ProgramSettings
    specs: tuple[RuleSpec, ...]
    tiers: tuple[Tier, ...] = ()
    badges: tuple[Badge, ...] = ()  # the active ones, their levels read with them
    has_challenges: bool = False

    @cached_property
    def brand(self) -> Brand:
        return Brand.of(self.settings)

    @property
    def base_tier(self) -> Tier | None:
        """The entry tier everyone is in without earning it (threshold 0), if there is one."""
        return self.tiers[0] if self.tiers and self.tiers[0].threshold == 0 else None

    def tier_for(self, measure) -> Tier | None:
        """The highest tier whose threshold ``measure`` reaches."""
        reached = None
        for tier in self.tiers:
            if measure >= tier.threshold:
                reached = tier
        return reached

    @property
    def rules_need_tiers(self) -> bool:
        return any(spec.tier_ids for spec in self.specs)

    @property
    def rules_need_members(self) -> bool:
        """Whether a rule only for members given it can still apply (then each activity needs its
        member's rules): one whose days are not over, or ended less than MEMBERS_ONLY_LATE ago (an
        order placed in them may arrive late). Past that, orders go the faster way again."""
        since = timezone.now() - MEMBERS_ONLY_LATE
        return any(spec.members_only and (spec.ends_at is None or spec.ends_at > since) for spec in self.specs)

    @property
    def tracks_progress(self) -> bool:
        """Whether anything (tiers, badges, challenges) must be re-checked after a member's activity."""
        return bool(self.tiers) or bool(self.badges) or self.has_challenges

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.time_zone)

    def local_date(self, moment: datetime):
        return moment.astimezone(self.tz).date()

    def available_at(self, earned_at: datetime) -> datetime | None:
        """When order points earned at ``earned_at`` leave pending; None if there is no return window."""
        days = self.settings.pending_days
        return earned_at + timedelta(days=days) if days else None

    def expires_at(self, earned_at: datetime) -> datetime | None:
        """When a lot earned at ``earned_at`` expires under the program's policy (None: it does not)."""
        policy, months = self.settings.expiry_policy, self.settings.expiry_months
        if policy in (ExpiryPolicy.NEVER, ExpiryPolicy.INACTIVITY):
            return None
        local = earned_at.astimezone(self.tz)
        shifted = add_months(local, months)
        if policy == ExpiryPolicy.ROLLING:
            return shifted
        if policy == ExpiryPolicy.END_OF_MONTH:
            # Valid through the last day of that month: gone at midnight starting the next one.
            first_next = add_months(shifted.replace(day=1, hour=0, minute=0, second=0, microsecond=0), 1)
            return first_next.replace(tzinfo=self.tz)
        return datetime(shifted.year + 1, 1, 1, tzinfo=self.tz)


# Yearly days (birthdays, membership anniversaries) missed while the scheduler was down are caught
# up for this many days.
CATCH_UP_DAYS = 7


def days_to_catch_up(today: date) -> list[date]:
    """The days a yearly job looks at on ``today``: the last ``CATCH_UP_DAYS``, oldest first."""
    return [today - timedelta(days=back) for back in range(CATCH_UP_DAYS - 1, -1, -1)]


def on_this_day(field: str, day: date) -> Q:
    """Rows whose ``field`` (a date, or a datetime read in the current time zone) has ``day``'s
    month and day, in any year; 29 February counts on 28 February in the years without one."""
    wanted = Q(**{f"{field}__month": day.month, f"{field}__day": day.day})
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        wanted |= Q(**{f"{field}__month": 2, f"{field}__day": 29})
    return wanted


def add_months(moment: datetime, months: int) -> datetime:
    """Same day and time ``months`` later; the 31st becomes the last day of a shorter month."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def rule_spec(rule: EarningRule, *, program_currency: str, partner_ids=(), tier_ids=()) -> RuleSpec:
    return RuleSpec(
        id=rule.pk, name=rule.name, kind=rule.kind, activity_type=rule.activity_type, points=rule.points,
        points_per_unit=rule.points_per_unit, currency=(rule.currency or program_currency).upper(),
        rounding=rule.rounding, multiplier=rule.multiplier, starts_at=rule.starts_at, ends_at=rule.ends_at,
        min_order_value=rule.min_order_value, categories=tuple(rule.categories or ()), skus=tuple(rule.skus or ()),
        partner_ids=tuple(sorted(partner_ids)), tier_ids=tuple(sorted(tier_ids)), cap_per_day=rule.cap_per_day,
        cap_per_month=rule.cap_per_month, priority=rule.priority, stacks=rule.stacks, members_only=rule.members_only,
    )


def load_program() -> Program:
    program_settings, _ = ProgramSettings.objects.get_or_create(pk=1)
    rules = list(EarningRule.objects.filter(is_active=True).prefetch_related("partners", "tiers"))
    specs = tuple(
        rule_spec(rule, program_currency=program_settings.currency, partner_ids=[p.pk for p in rule.partners.all()],
                  tier_ids=[t.pk for t in rule.tiers.all()])
        for rule in rules
    )
    now = timezone.now()
    return Program(
        settings=program_settings, specs=specs, tiers=tuple(Tier.objects.order_by("rank")),
        badges=tuple(Badge.objects.filter(is_active=True).prefetch_related("levels")),
        has_challenges=Challenge.objects.filter(is_active=True, ends_at__gt=now - CHALLENGE_LATE).exists(),
    )


_program = ProcessCopy("program", load_program)


def current_program() -> Program:
    return _program.get()


def program_changed() -> None:
    """After a rule, a tier, a badge, a challenge or a setting changed: every process reads the
    program again once the change is committed (this one at once)."""
    _program.changed()
