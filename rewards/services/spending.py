"""Spending and correcting points: adjustments, redemptions, coupons."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuditLog, Member, Partner, User
from accounts.selectors import partner_member_ids_query
from accounts.services import random_codes
from core import events, l10n
from core.errors import Conflict, Invalid, NotFound
from rewards.ledger import Posting, lock_members
from rewards.models import (
    Coupon,
    EntryKind,
    LedgerEntry,
    Redemption,
    Reward,
)
from rewards.program import current_program
from rewards.selectors import member_tier_ids, reward_check

# --- Adjustments -------------------------------------------------------------------------------------


def points_adjust(*, member: Member, points: int, reason: str, actor_user: User | None = None,
                  actor_partner: Partner | None = None) -> LedgerEntry:
    """Credit or debit points by hand, with a reason; recorded with who did it, before and after.

    A debit never takes more than is available (``Conflict``); a credit repays owed points first.
    """
    reason = (reason or "").strip()
    if not reason:
        raise Invalid(_("A reason is required."), fields={"reason": _("A reason is required.")})
    if not points:
        raise Invalid(_("Points must not be zero."), fields={"points": _("Must not be zero.")})
    program = current_program()
    with transaction.atomic():
        balances = lock_members([member.pk])
        before = balances[member.pk].available
        posting = Posting(balances)
        who = {"actor_user": actor_user, "actor_partner": actor_partner, "reason": reason}
        if points > 0:
            entry = posting.credit_available(member.pk, points, kind=EntryKind.ADJUST, description="Adjustment",
                                             expires_at=program.expires_at(posting.now), **who)
        else:
            entry = posting.debit_available(member.pk, -points, kind=EntryKind.ADJUST, description="Adjustment", **who)
        posting.flush()
        AuditLog.objects.create(
            action="points.adjusted", member=member, actor_user=actor_user, actor_partner=actor_partner,
            subject=f"ledger_entry:{entry.pk}", before={"available": before},
            after={"available": balances[member.pk].available, "points": points}, reason=reason,
        )
    return LedgerEntry.objects.get(pk=entry.pk)


# --- Rewards and coupons -----------------------------------------------------------------------------


def coupon_code_generate() -> str:
    raw = random_codes(1, 12)[0]
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalize_coupon_code(code: str) -> str:
    raw = "".join(ch for ch in (code or "").upper() if ch.isalnum())
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}" if len(raw) == 12 else raw


def reward_redeem(*, member: Member, reward: Reward, partner: Partner | None = None,
                  now: datetime | None = None) -> Redemption:
    """Spend points on a reward and issue its coupon.

    Under the member's lock: the reward is open, in stock (decremented by a conditional update, so
    stock never goes below zero), within the member's limit, and affordable; the points leave the
    soonest-expiring lots. Twenty simultaneous redemptions by one member get exactly as many
    coupons as the balance pays for; the rest get ``Conflict``. ``now`` is for history told after
    the fact (the demo's).
    """
    now = now or timezone.now()
    with transaction.atomic():
        balances = lock_members([member.pk])
        tier_id = member_tier_ids([member.pk])[member.pk] if current_program().tiers else None
        reward = Reward.objects.prefetch_related("tiers", "early_access_tiers").get(pk=reward.pk)
        problem = reward_check(reward=reward, member=member, tier_id=tier_id, now=now)
        if problem:
            raise Conflict(problem, code="reward_unavailable", fields={"reward": problem})
        if reward.per_member_limit is not None:
            taken = Redemption.objects.filter(member=member, reward=reward).count()
            if taken >= reward.per_member_limit:
                message = _("Limit reached: %(count)s per member.") % {"count": reward.per_member_limit}
                raise Conflict(message, code="limit_reached", fields={"reward": message})
        available = balances[member.pk].available
        if available < reward.points_cost:
            message = _("Not enough points: %(available)s available, %(needed)s needed.") % {
                "available": l10n.number(available), "needed": l10n.number(reward.points_cost)}
            raise Conflict(message, code="insufficient_points", fields={"reward": message})
        if reward.stock is not None:
            taken = Reward.objects.filter(pk=reward.pk, stock__gt=0).update(stock=F("stock") - 1)
            if not taken:
                raise Conflict(_("Out of stock."), code="out_of_stock", fields={"reward": _("Out of stock.")})
        posting = Posting(balances, now=now)
        entry = posting.debit_available(member.pk, reward.points_cost, kind=EntryKind.REDEEM,
                                        description=f"Redeemed: {reward.name}", actor_partner=partner)
        posting.touch_activity(member.pk, now)
        posting.flush()
        redemption = Redemption.objects.create(member=member, reward=reward, points=reward.points_cost,
                                               entry_id=entry.pk, partner=partner, created_at=now)
        for _attempt in range(5):
            try:
                with transaction.atomic():
                    Coupon.objects.create(
                        code=coupon_code_generate(), redemption=redemption, member=member, reward=reward,
                        expires_at=now + timedelta(days=reward.coupon_valid_days), created_at=now,
                    )
                break
            except IntegrityError:
                continue  # 31^12 codes: a collision is rare enough to just draw again
        coupon = Coupon.objects.get(redemption=redemption)
        events.emit("reward.redeemed", member_id=member.pk, data={
            "reward_id": reward.pk, "reward": reward.name, "points": reward.points_cost, "coupon": coupon.code,
            "expires_at": coupon.expires_at.isoformat(), "partner_id": partner.pk if partner else None})
    return Redemption.objects.select_related("coupon", "reward").get(pk=redemption.pk)


def coupon_use(*, code: str, partner: Partner, order_id: str = "") -> Coupon:
    """Mark a coupon used, once: a single conditional UPDATE, so two checkouts cannot both win."""
    code = normalize_coupon_code(code)
    now = timezone.now()
    # A partner sees only its own customers' coupons: another store's code is as unknown as a typo.
    coupons = Coupon.objects.filter(member_id__in=partner_member_ids_query(partner))
    with transaction.atomic():
        used = coupons.filter(code=code, used_at__isnull=True, expires_at__gt=now).update(
            used_at=now, used_by=partner, used_order_id=order_id[:100]
        )
        coupon = coupons.select_related("reward", "member").filter(code=code).first()
        if used:
            events.emit("coupon.used", member_id=coupon.member_id, data={
                "coupon": coupon.code, "reward_id": coupon.reward_id, "order_id": order_id[:100],
                "partner_id": partner.pk})
    if coupon is None:
        raise NotFound(_("No such coupon."), code="unknown_coupon", fields={"code": _("No such coupon.")})
    if not used:
        if coupon.used_at is not None:
            raise Conflict(_("This coupon was already used."), code="coupon_used", fields={"code": _("Already used.")})
        raise Conflict(_("This coupon has expired."), code="coupon_expired", fields={"code": _("Expired.")})
    return coupon
