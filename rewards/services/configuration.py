"""Program settings and earning rules, checked and audited."""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuditLog, User
from core.errors import Invalid
from rewards import rules
from rewards.currencies import is_currency
from rewards.models import (
    ActivityType,
    EarningRule,
    ProgramSettings,
    RuleKind,
)
from rewards.payloads import _EVENT_TYPE as _ACTIVITY_TYPE
from rewards.program import current_program, load_program, program_changed, rule_spec

# --- Program settings ----------------------------------------------------------------------------


def program_settings_update(*, actor_user: User | None, changes: dict, reason: str = "") -> ProgramSettings:
    """Change the points settings; the old and new values go to the audit log."""
    with transaction.atomic():
        current, _ = ProgramSettings.objects.select_for_update().get_or_create(pk=1)
        before = {key: str(getattr(current, key)) for key in changes}
        for key, value in changes.items():
            setattr(current, key, value)
        current.full_clean()
        current.save()
        AuditLog.objects.create(action="program.settings_changed", actor_user=actor_user, subject="program_settings",
                                before=before, after={key: str(value) for key, value in changes.items()},
                                reason=reason)
        program_changed()
    return current


# --- Earning rules -------------------------------------------------------------------------------


def rule_members_add(*, rule: EarningRule, member_ids: list[int]) -> int:
    """Give a members-only rule to these members (in the caller's transaction); returns how many
    did not have it."""
    from core import bulk
    from rewards.models import RuleMember

    if not rule.members_only:
        raise Invalid(_("This rule is for everyone."), fields={"rule": _("Not a members-only rule.")})
    now = timezone.now()
    rows = [(rule.pk, member_id, now) for member_id in member_ids]
    fields = ("rule_id", "member_id", "created_at")
    inserted = bulk.insert_new(RuleMember, fields, rows, unique=("member_id", "rule_id"))
    return len(inserted)


def earning_rule_problems(*, rule: EarningRule, partner_ids: list[int], tier_ids: list[int] = ()
                          ) -> dict[str, list[str]]:
    """What is wrong with a rule, by field: missing values for its kind, impossible dates, or a
    contradiction with an active rule (see ``rewards.rules.conflicts``)."""
    problems: dict[str, list[str]] = defaultdict(list)
    is_order = rule.activity_type == ActivityType.ORDER
    if not _ACTIVITY_TYPE.match(rule.activity_type or ""):
        problems["activity_type"].append("Use lower-case letters, digits and underscores.")
    if rule.kind == RuleKind.PER_CURRENCY:
        if not rule.points_per_unit or rule.points_per_unit <= 0:
            problems["points_per_unit"].append("A per-currency rule needs points per unit above zero.")
        if not is_order:
            problems["activity_type"].append("Points per currency unit only apply to orders.")
        if rule.currency and not is_currency(rule.currency.upper()):
            problems["currency"].append("Unknown currency; use an ISO 4217 code such as EUR.")
    elif rule.kind == RuleKind.FIXED:
        if not rule.points:
            problems["points"].append("A fixed rule needs a number of points.")
    elif rule.kind == RuleKind.MULTIPLIER:
        if not rule.multiplier or rule.multiplier <= 0:
            problems["multiplier"].append("A multiplier rule needs a multiplier above zero (2 = double points).")
    if rule.kind != RuleKind.FIXED and rule.points:
        problems["points"].append("Only fixed rules give fixed points.")
    if rule.kind != RuleKind.PER_CURRENCY and rule.points_per_unit:
        problems["points_per_unit"].append("Only per-currency rules use points per unit.")
    if rule.kind != RuleKind.MULTIPLIER and rule.multiplier:
        problems["multiplier"].append("Only multiplier rules multiply.")
    if not is_order and (rule.categories or rule.skus or rule.min_order_value is not None):
        problems["activity_type"].append("Categories, SKUs and a minimum order value only apply to orders.")
    if rule.kind == RuleKind.FIXED and (rule.categories or rule.skus):
        problems["categories"].append("Fixed points are per order; limit them with a minimum order value instead.")
    if rule.starts_at and rule.ends_at and rule.ends_at <= rule.starts_at:
        problems["ends_at"].append("Must be after the start.")
    if rule.is_active and not problems:
        program = current_program()
        spec = rule_spec(rule, program_currency=program.settings.currency, partner_ids=partner_ids,
                         tier_ids=tier_ids)
        others = [s for s in load_program().specs if s.id != rule.pk]
        for message in rules.conflicts(spec, others):
            problems["priority"].append(message)
    return dict(problems)


def earning_rule_save(*, rule: EarningRule, partner_ids: list[int] | None = None, tier_ids: list[int] | None = None,
                      actor_user: User | None = None) -> EarningRule:
    """Save a rule after checking it; every process applies it from its next request or task on."""
    partner_ids = list(partner_ids if partner_ids is not None else (rule.partners.values_list("pk", flat=True)
                                                                    if rule.pk else []))
    tier_ids = list(tier_ids if tier_ids is not None else (rule.tiers.values_list("pk", flat=True)
                                                           if rule.pk else []))
    problems = earning_rule_problems(rule=rule, partner_ids=partner_ids, tier_ids=tier_ids)
    if problems:
        raise Invalid(_("This rule cannot be saved."), fields=problems)
    with transaction.atomic():
        created = rule.pk is None
        rule.save()
        rule.partners.set(partner_ids)
        rule.tiers.set(tier_ids)
        snapshot = rule_spec(rule, program_currency="", partner_ids=partner_ids, tier_ids=tier_ids).to_json()
        AuditLog.objects.create(action="rule.created" if created else "rule.changed", actor_user=actor_user,
                                subject=f"earning_rule:{rule.pk}", after=snapshot)
        program_changed()
    return rule
