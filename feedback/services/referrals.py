"""Referrals: linking a friend to a referrer, fraud checks, conversion on the friend's first
qualifying order, rewards through the engine (pending for the order's return window), voiding on
refund, staff approval, invitations."""

from __future__ import annotations

import contextlib
import hashlib
import re
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import ExternalId, Member, User
from core import events
from core.errors import Conflict, DomainError, Invalid
from feedback.models import Invitation, Referral, ReferralSettings, ReferralStatus, RewardKind
from feedback.selectors import open_referral_friend_ids, open_referrals_changed
from messaging.models import Purpose
from messaging.services import Outgoing, messages_queue
from rewards.ledger import lock_members
from rewards.models import ActivityType, Order, OrderStatus
from rewards.program import current_program
from rewards.services import ActivityInput, activities_record, activity_reverse, reward_redeem

# Providers that deliver "ada+shop@..." to "ada@..."; Gmail also ignores dots in the name.
PLUS_PROVIDERS = {"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "icloud.com",
                  "me.com", "fastmail.com", "proton.me", "protonmail.com"}
DOT_PROVIDERS = {"gmail.com", "googlemail.com"}
REFERRAL_FRIEND = "referral_friend"


def referral_settings() -> ReferralSettings:
    found, _ = ReferralSettings.objects.get_or_create(pk=1)
    return found


def identity_email(email: str) -> str:
    """The mailbox an address really reaches: case folded, +tags and (Gmail) dots dropped."""
    email = (email or "").strip().lower()
    if "@" not in email:
        return email
    local, domain = email.rsplit("@", 1)
    domain = "gmail.com" if domain == "googlemail.com" else domain
    if domain in PLUS_PROVIDERS:
        local = local.split("+", 1)[0]
    if domain in DOT_PROVIDERS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def email_pattern(email: str) -> str:
    """ "jo.doe+1@x.com", "jodoe7@x.com" and "jodoe12@x.com" share the pattern "jodoe#@x.com"."""
    identity = identity_email(email)
    if "@" not in identity:
        return ""
    local, domain = identity.rsplit("@", 1)
    return f"{re.sub(r'[0-9]+', '#', local.replace('.', '').split('+', 1)[0]).rstrip('#')}#@{domain}"


def device_of(*, ip: str = "", user_agent: str = "") -> str:
    """Sign-ups from one network (/24 for IPv4, /48 for IPv6) and one browser share this hash."""
    if not ip and not user_agent:
        return ""
    network = ":".join(ip.split(":")[:3]) if ":" in ip else ".".join(ip.split(".")[:3])
    return hashlib.sha256(f"{network}|{user_agent}".encode()).hexdigest()[:32]


def self_referral_reason(referrer: Member, friend: Member) -> str | None:
    if referrer.pk == friend.pk:
        return "You cannot refer yourself."
    if referrer.email and friend.email and identity_email(referrer.email) == identity_email(friend.email):
        return "The friend's email reaches the referrer's own mailbox."
    if referrer.phone and friend.phone and referrer.phone == friend.phone:
        return "The friend has the referrer's phone number."
    # One store gives one customer one id (a unique index), so the same id means another store's record.
    shared = set(ExternalId.objects.filter(member=referrer).values_list("external_id", flat=True)) & set(
        ExternalId.objects.filter(member=friend).values_list("external_id", flat=True))
    if shared:
        return "The friend has the referrer's customer id at the store."
    return None


def referral_link(*, friend: Member, code: str, source: str, device: str = "",
                  now: datetime | None = None) -> Referral:
    """Link a new member to the member whose referral code they came with.

    Refused (``Invalid``, nothing stored) for an unknown code, a self-referral (the same mailbox
    once normalised, the same phone, the same customer id at a store), a friend already referred,
    or a friend who has ordered before. A sign-up that shares a device or an email pattern with
    ``shared_signals_threshold`` - 1 of the referrer's other sign-ups in the last 7 days is flagged
    and held for staff, and so are those others."""
    now = now or timezone.now()
    code = (code or "").strip().upper()
    referrer = Member.objects.filter(referral_code__iexact=code, erased_at__isnull=True).first()
    if referrer is None:
        raise Invalid(_("Unknown referral code."), code="unknown_code", fields={"referral_code": _("Unknown code.")})
    reason = self_referral_reason(referrer, friend)
    if reason:
        raise Invalid(reason, code="self_referral", fields={"referral_code": reason})
    if Order.objects.filter(member=friend).exists():
        raise Invalid(_("Referrals are for new customers: this member has ordered before."), code="not_new",
                      fields={"referral_code": _("Only for customers who have not ordered yet.")})
    config = referral_settings()
    pattern = email_pattern(friend.email)
    with transaction.atomic():
        if Referral.objects.select_for_update().filter(friend=friend).exists():
            raise Invalid(_("This member was already referred."), code="already_referred",
                          fields={"referral_code": _("Already referred.")})
        Member.objects.select_for_update(no_key=True).filter(pk=referrer.pk).first()  # one sign-up at a time
        recent = Referral.objects.filter(referrer=referrer, created_at__gte=now - timedelta(days=7))
        flags, alike = [], Referral.objects.none()
        if device:
            same = recent.filter(device=device)
            if same.count() + 1 >= config.shared_signals_threshold:
                flags.append("shared_device")
                alike = alike | same
        if pattern:
            same = recent.filter(email_pattern=pattern)
            if same.count() + 1 >= config.shared_signals_threshold:
                flags.append("email_pattern")
                alike = alike | same
        try:
            with transaction.atomic():
                referral = Referral.objects.create(
                    referrer=referrer, friend=friend, source=source, device=device, email_pattern=pattern,
                    flags=flags, status=ReferralStatus.HELD if flags else ReferralStatus.SIGNED_UP, created_at=now)
        except IntegrityError:  # a concurrent link of the same friend won
            raise Invalid(_("This member was already referred."), code="already_referred",
                          fields={"referral_code": _("Already referred.")}) from None
        open_referrals_changed()  # the friend's orders are checked from now on, in every process
        for other in alike.exclude(pk=referral.pk).filter(status=ReferralStatus.SIGNED_UP):
            other.flags = sorted(set(other.flags) | set(flags))
            other.status = ReferralStatus.HELD
            other.save(update_fields=["flags", "status"])
    return referral


# --- Conversion, rewards, voiding -----------------------------------------------------------------

def referrals_check(*, friend_ids: list[int], now: datetime | None = None) -> int:
    """After friends' orders or refunds: convert referrals on a first qualifying order, void those
    whose order was refunded before its return window ended. Safe to run twice. Returns changes."""
    changed = 0
    for referral_id in Referral.objects.filter(friend_id__in=friend_ids).filter(
            Q(status__in=[ReferralStatus.SIGNED_UP, ReferralStatus.CONVERTED])
            | Q(status=ReferralStatus.HELD, held_conversion=False)).values_list("pk", flat=True):
        changed += _check_one(referral_id, now=now or timezone.now())
    return changed


def _check_one(referral_id: int, *, now: datetime) -> int:
    config = referral_settings()
    pair = Referral.objects.filter(pk=referral_id).values_list("referrer_id", "friend_id").first()
    with transaction.atomic():
        # Both members first, in key order (as the engine locks them): the monthly cap counts the
        # referrer's conversions, and two friends converting at once must not both slip under it.
        lock_members(pair)
        referral = Referral.objects.select_for_update().get(pk=referral_id)
        if referral.status == ReferralStatus.CONVERTED:
            order = Order.objects.filter(pk=referral.order_id).first()
            kept = order.total - order.refunded_amount if order else 0
            if order is None or order.status == OrderStatus.REFUNDED or kept < config.min_order_value:
                _void(referral, reason="The friend's order was returned.", actor_user=None, now=now)
                return 1
            return 0
        if referral.status not in (ReferralStatus.SIGNED_UP, ReferralStatus.HELD) or referral.order_id:
            return 0
        # The friend had no order when linked (``referral_link`` checks), so every order counts.
        order = (Order.objects.filter(member_id=referral.friend_id, total__gte=config.min_order_value)
                 .exclude(status=OrderStatus.REFUNDED).order_by("placed_at", "pk").first())
        if order is None:
            return 0
        referral.order = order
        referral.order_available_at = current_program().available_at(order.placed_at) or now
        referral.converted_at = now
        month_start = timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        this_month = Referral.objects.filter(referrer_id=referral.referrer_id, converted_at__gte=month_start).exclude(
            pk=referral.pk).exclude(status=ReferralStatus.VOID).count()
        if this_month >= config.max_conversions_per_month:
            _void(referral, reason=f"The referrer reached {config.max_conversions_per_month} conversions this month.",
                  actor_user=None, now=now)
            return 1
        if referral.status == ReferralStatus.HELD:
            referral.held_conversion = True
            referral.save(update_fields=["order", "order_available_at", "converted_at", "held_conversion"])
            return 1
        _grant(referral, config=config, now=now)
    return 1


def _grant(referral: Referral, *, config: ReferralSettings, now: datetime) -> None:
    """Points now, pending until the order's return window ends (coupons are issued then)."""
    items = []
    pending = referral.order_available_at if referral.order_available_at and referral.order_available_at > now \
        else None
    if config.referrer_reward == RewardKind.POINTS and config.referrer_points:
        items.append(ActivityInput(member_id=referral.referrer_id, type=ActivityType.REFERRAL, occurred_at=now,
                                   source_key=f"referral:{referral.pk}:referrer", points=config.referrer_points,
                                   pending_until=pending, description="A friend you referred placed an order"))
    if config.friend_reward == RewardKind.POINTS and config.friend_points:
        items.append(ActivityInput(member_id=referral.friend_id, type=REFERRAL_FRIEND, occurred_at=now,
                                   source_key=f"referral:{referral.pk}:friend", points=config.friend_points,
                                   pending_until=pending, description="Welcome bonus for joining through a friend"))
    if config.referrer_reward != RewardKind.POINTS:
        # Badges count converted referrals by this activity; it carries no points of its own.
        items.append(ActivityInput(member_id=referral.referrer_id, type=ActivityType.REFERRAL, occurred_at=now,
                                   source_key=f"referral:{referral.pk}:referrer", points=0,
                                   description="A friend you referred placed an order"))
    results = activities_record(items=items)
    by_key = {item.source_key: result.activity_id for item, result in zip(items, results, strict=True)}
    referral.referrer_activity_id = by_key.get(f"referral:{referral.pk}:referrer")
    referral.friend_activity_id = by_key.get(f"referral:{referral.pk}:friend")
    referral.status = ReferralStatus.CONVERTED
    referral.save()
    for member_id, role in ((referral.referrer_id, "referrer"), (referral.friend_id, "friend")):
        events.emit("referral.converted", member_id=member_id, data={"referral_id": referral.pk, "role": role})


def _void(referral: Referral, *, reason: str, actor_user: User | None, now: datetime) -> None:
    for activity_id in (referral.referrer_activity_id, referral.friend_activity_id):
        if activity_id:
            activity_reverse(activity_id=activity_id, description="Referral void", reason=reason,
                             actor_user=actor_user)
    referral.status, referral.void_reason, referral.voided_at = ReferralStatus.VOID, reason, now
    referral.save()
    open_referrals_changed()


def referrals_settle(*, now: datetime | None = None) -> int:
    """Converted referrals whose order's return window has ended are rewarded: their pending points
    become available with the order's (the points engine does that), and coupons are issued now.
    First, the friends' orders of the last two days that raced their referral's link (recorded by a
    process that had not seen the link yet, see ``open_referral_friend_ids``) are checked."""
    now = now or timezone.now()
    waiting = Referral.objects.filter(status__in=(ReferralStatus.SIGNED_UP, ReferralStatus.HELD), order__isnull=True)
    raced = set(Order.objects.filter(member_id__in=waiting.values("friend_id"), created_at__gte=now - timedelta(days=2))
                .values_list("member_id", flat=True))
    if raced:
        referrals_check(friend_ids=sorted(raced), now=now)
    config = referral_settings()
    done = 0
    for referral_id in Referral.objects.filter(status=ReferralStatus.CONVERTED,
                                               order_available_at__lte=now).values_list("pk", flat=True):
        with transaction.atomic():
            referral = Referral.objects.select_for_update().get(pk=referral_id)
            if referral.status != ReferralStatus.CONVERTED:
                continue
            referral.status, referral.rewarded_at = ReferralStatus.REWARDED, now
            referral.save(update_fields=["status", "rewarded_at"])
            for member_id, role in ((referral.referrer_id, "referrer"), (referral.friend_id, "friend")):
                events.emit("referral.rewarded", member_id=member_id, data={"referral_id": referral.pk, "role": role})
        for member_id, kind, reward in ((referral.referrer_id, config.referrer_reward, config.referrer_coupon_reward),
                                        (referral.friend_id, config.friend_reward, config.friend_coupon_reward)):
            if kind == RewardKind.COUPON and reward is not None:
                _coupon(referral, member_id=member_id, reward=reward, now=now)
        done += 1
    if done:
        open_referrals_changed()
    return done


def _coupon(referral: Referral, *, member_id: int, reward, now: datetime) -> None:
    """A coupon through the engine: the reward's cost is credited as a referral activity, then
    redeemed. If the reward cannot be redeemed (out of stock), the member keeps the points."""
    who = "referrer" if member_id == referral.referrer_id else "friend"
    result = activities_record(items=[ActivityInput(
        member_id=member_id, type=ActivityType.REFERRAL if who == "referrer" else REFERRAL_FRIEND, occurred_at=now,
        source_key=f"referral:{referral.pk}:{who}:coupon", points=reward.points_cost,
        description=f"Referral reward: {reward.name}")])[0]
    if result.created:
        with contextlib.suppress(Conflict):
            reward_redeem(member=Member.objects.get(pk=member_id), reward=reward)


def referral_approve(*, referral_id: int, staff_user: User) -> Referral:
    """Staff clear a flagged referral: it goes on as if never flagged (rewards now if it converted)."""
    now = timezone.now()
    with transaction.atomic():
        referral = Referral.objects.select_for_update().get(pk=referral_id)
        if referral.status != ReferralStatus.HELD:
            raise Conflict(_("Only flagged referrals wait for approval."), code="not_held",
                           fields={"referral": _("Not waiting for approval.")})
        referral.approved_by = staff_user
        if referral.held_conversion:
            referral.save(update_fields=["approved_by"])
            _grant(referral, config=referral_settings(), now=now)
        else:
            referral.status = ReferralStatus.SIGNED_UP
            referral.save(update_fields=["approved_by", "status"])
    if not referral.held_conversion:
        referrals_check(friend_ids=[referral.friend_id], now=now)
    referral.refresh_from_db()
    return referral


def referral_void(*, referral_id: int, staff_user: User, reason: str) -> Referral:
    reason = (reason or "").strip()
    if not reason:
        raise Invalid(_("Say why."), fields={"reason": _("A reason is required.")})
    with transaction.atomic():
        referral = Referral.objects.select_for_update().get(pk=referral_id)
        if referral.status != ReferralStatus.VOID:
            _void(referral, reason=reason, actor_user=staff_user, now=timezone.now())
    return referral


# --- Invitations ----------------------------------------------------------------------------------

def invitation_send(*, member: Member, email: str, now: datetime | None = None) -> Invitation:
    """Email a friend the member's referral link (at most ``invitations_per_day`` a day)."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    now = now or timezone.now()
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise Invalid(_("Enter a valid email address."), fields={"email": _("Enter a valid email address.")}) from None
    if identity_email(email) == identity_email(member.email):
        raise Invalid(_("That is your own address."), fields={"email": _("That is your own address.")})
    limit = referral_settings().invitations_per_day
    with transaction.atomic():
        Member.objects.select_for_update(no_key=True).filter(pk=member.pk).first()
        if Invitation.objects.filter(member=member, sent_at__gte=now - timedelta(days=1)).count() >= limit:
            raise Conflict(ngettext("You can send %(count)s invitation a day; try again tomorrow.",
                                    "You can send %(count)s invitations a day; try again tomorrow.", limit) % {
                "count": limit}, code="rate_limited", fields={"email": ngettext(
                    "At most %(count)s invitation a day.", "At most %(count)s invitations a day.", limit) % {
                    "count": limit}})
        if Invitation.objects.filter(member=member, email=email, sent_at__gte=now - timedelta(days=30)).exists():
            raise Conflict(_("You invited this friend recently."), code="already_invited",
                           fields={"email": _("Already invited in the last 30 days.")})
        invitation = Invitation.objects.create(member=member, email=email, sent_at=now)
        link = f"{settings.SITE_URL}{reverse('feedback:referral-landing', args=[member.referral_code])}"
        messages_queue(now=now, items=[Outgoing(
            template="referral_invitation", purpose=Purpose.REFERRALS, to=email,
            key=f"referral_invitation:{invitation.pk}",
            # In the inviter's language (the friend is not a member: we know no other).
            context={"inviter": member.first_name or _("A friend"), "offer": referral_settings().friend_offer,
                     "url": link, "language": member.language or translation.get_language() or ""})])
    return invitation


def after_activities(*, member_ids, activity_types) -> None:
    """Hook from the points engine: when members with an open referral order or are refunded,
    check their referrals once the transaction commits."""
    if not ({ActivityType.ORDER, ActivityType.REFUND} & set(activity_types)):
        return
    friends = open_referral_friend_ids(member_ids)
    if friends:
        from feedback.tasks import check_referrals

        transaction.on_commit(lambda: check_referrals.delay(friend_ids=friends))



def referral_code_check(*, code: str, field: str) -> None:
    """Refuse an unknown referral code before anything is saved (``Invalid`` naming ``field``)."""
    if not Member.objects.filter(referral_code__iexact=code.strip(), erased_at__isnull=True).exists():
        raise Invalid(_("Unknown referral code."), code="unknown_code", fields={field: _("Unknown referral code.")})


def referral_link_reported(*, friend: Member, code: str, source: str, device: str = "") -> dict:
    """``referral_link``, with a refusal reported as ``{"status": "refused", "reason"}`` instead of raised
    (a partner creating a member gets the member even when the referral does not count)."""
    try:
        referral = referral_link(friend=friend, code=code, source=source, device=device)
    except DomainError as exc:
        return {"status": "refused", "reason": exc.message}
    return {"status": referral.status, "reason": ""}


def pending_referral_link(*, user: User) -> None:
    """After a sign-up's email is verified: link the referral code the visitor came with, if any."""
    from feedback.models import PendingReferral

    pending = PendingReferral.objects.filter(user=user).first()
    if pending is None:
        return
    member = getattr(user, "member", None)
    if member is not None:
        referral_link_reported(friend=member, code=pending.code, source=pending.source, device=pending.device)
    pending.delete()


def member_feedback_erase(*, member: Member) -> None:
    """Erasure: the friends' addresses the member invited, and whatever the member wrote in surveys
    (scores stay, unlinked from any words, for the results)."""
    from feedback.models import FollowUp, SurveyAnswer

    Invitation.objects.filter(member=member).delete()
    SurveyAnswer.objects.filter(response__member=member).exclude(text="").update(text="")
    FollowUp.objects.filter(member=member).update(comment="")
