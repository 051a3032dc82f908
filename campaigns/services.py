"""Writes of campaigns: saving one (checked), launching, pausing and stopping it (audited), and
running it: members of its audience enter once per occurrence, a random share is held out, and the
others get the offer (through the engine: an activity with a key per member and occurrence, so a
replay never pays twice) and the message (through the outbox, under the one contact cap).

Flow: ``campaigns.run_due`` (beat, hourly) calls ``campaigns_run_due``, which runs every running
campaign whose occurrence is due; staff can run one at once from the admin.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import AuditLog, Member, User
from campaigns import audience
from campaigns.models import Campaign, CampaignEntry, CampaignStatus, Group, OfferKind, Trigger
from core import bulk, events, l10n
from core.errors import Conflict, Invalid
from core.events import Emitted
from messaging import catalogue
from messaging.models import Delivery, Purpose

CHUNK = 1000
PLACEHOLDERS = {"first_name": "Ada", "points": "1,250", "tier": "Gold", "offer": "500 bonus points",
                "next_reward": "Free stoneware cup (1,200 points)", "recommended": "Jasmine pearls"}
_WORDS = catalogue.Kind("campaign", "Campaign", "", "", PLACEHOLDERS)
EDITABLE = ("name", "audience", "trigger", "starts_at", "ends_at", "offer", "offer_points", "offer_reward",
            "offer_multiplier", "offer_categories", "offer_skus", "offer_days", "title", "body", "delivery",
            "holdout_percent", "report_days")


def campaign_problems(campaign: Campaign) -> dict[str, str]:
    """What is wrong with a campaign, by field (the admin shows each next to its field)."""
    problems = {}
    try:
        campaign.audience = audience.check(campaign.audience or {})
    except Invalid as exc:
        problems["audience"] = " ".join(str(m) for messages in exc.fields.values() for m in
                                        (messages if isinstance(messages, list) else [messages]))
    if campaign.offer == OfferKind.POINTS and not campaign.offer_points:
        problems["offer_points"] = "Bonus points need a number of points."
    if campaign.offer == OfferKind.COUPON and not campaign.offer_reward_id:
        problems["offer_reward"] = "A coupon offer needs a reward."
    if campaign.offer == OfferKind.MULTIPLIER:
        if not campaign.offer_multiplier or campaign.offer_multiplier <= 1:
            problems["offer_multiplier"] = "A multiplier above 1 (2 = double points)."
        if not campaign.offer_days:
            problems["offer_days"] = "For how many days from the start."
        if campaign.trigger != Trigger.ONCE:
            # Its days run from the campaign's start: members entering later would be promised days gone by.
            problems["trigger"] = "A multiplier's days run from the campaign's start: use it with a one-off campaign."
        if "offer_multiplier" not in problems and "offer_days" not in problems:
            from rewards.services import earning_rule_problems

            found = earning_rule_problems(rule=_multiplier_rule(campaign, None, save=False), partner_ids=[],
                                          tier_ids=[])
            if found:
                problems["offer_multiplier"] = " ".join(m for messages in found.values() for m in messages)
    if campaign.pk is not None and CampaignEntry.objects.filter(campaign_id=campaign.pk).exists():
        saved = Campaign.objects.filter(pk=campaign.pk).values("trigger", "offer").first() or {}
        for name in ("trigger", "offer"):
            if saved.get(name) != getattr(campaign, name):
                # Another trigger is another occurrence key: everyone would enter, and be paid, again.
                problems[name] = "Members have entered: make a new campaign to change this."
    for name in ("title", "body"):
        try:
            catalogue.check(_WORDS, getattr(campaign, name) or "")
        except catalogue.PlaceholderError as exc:
            problems[name] = str(exc)
    if not (campaign.title or "").strip():
        problems["title"] = "A subject is needed."
    if campaign.ends_at and campaign.ends_at <= campaign.starts_at:
        problems["ends_at"] = "The end must come after the start."
    return problems


def campaign_save(*, campaign: Campaign, actor_user: User | None) -> Campaign:
    """Create or change a campaign (a running one too: its next run uses the new words)."""
    problems = campaign_problems(campaign)
    if problems:
        raise Invalid(_("The campaign needs changes."), fields=problems)
    with transaction.atomic():
        created = campaign.pk is None
        if created:
            campaign.created_by = actor_user
        if campaign.offer == OfferKind.MULTIPLIER:
            campaign.offer_rule = _multiplier_rule(campaign, actor_user)
        campaign.save()
        AuditLog.objects.create(action="campaign.created" if created else "campaign.changed", actor_user=actor_user,
                                subject=f"campaign:{campaign.pk}",
                                after={name: str(getattr(campaign, name)) for name in EDITABLE})
    return campaign


def _split(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _multiplier_rule(campaign: Campaign, actor_user: User | None, *, save: bool = True):
    """The members-only earning rule behind a multiplier offer: the campaign's multiplier on the
    orders of the members it sends to, from its start for ``offer_days`` days."""
    from datetime import timedelta

    from rewards.models import EarningRule, RuleKind
    from rewards.services import earning_rule_save

    rule = campaign.offer_rule or EarningRule(kind=RuleKind.MULTIPLIER, activity_type="order", members_only=True)
    rule.name = f"Campaign: {campaign.name}"[:100]
    rule.multiplier = campaign.offer_multiplier
    rule.categories, rule.skus = _split(campaign.offer_categories), _split(campaign.offer_skus)
    rule.starts_at = campaign.starts_at
    rule.ends_at = campaign.starts_at + timedelta(days=campaign.offer_days)
    rule.is_active = True
    return earning_rule_save(rule=rule, partner_ids=[], tier_ids=[], actor_user=actor_user) if save else rule


def campaign_set_status(*, campaign: Campaign, status: str, actor_user: User | None) -> Campaign:
    """Launch (running), pause or stop a campaign. A stopped campaign stays stopped."""
    if status not in CampaignStatus.values or status == CampaignStatus.DRAFT:
        raise Invalid(_("Unknown status."), fields={"status": _("running, paused or stopped.")})
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status == CampaignStatus.STOPPED:
            raise Conflict(_("This campaign was stopped; make a copy to run it again."),
                           fields={"status": _("Stopped.")})
        before = campaign.status
        campaign.status = status
        campaign.save(update_fields=["status", "updated_at"])
        AuditLog.objects.create(action=f"campaign.{status}", actor_user=actor_user, subject=f"campaign:{campaign.pk}",
                                before={"status": before}, after={"status": status})
    return campaign


def occurrence(campaign: Campaign, now: datetime) -> str | None:
    """The key of the occurrence due now (members enter each at most once), or None."""
    if campaign.status != CampaignStatus.RUNNING or now < campaign.starts_at or (
            campaign.ends_at is not None and now >= campaign.ends_at):
        return None
    from rewards.program import current_program

    if campaign.offer == OfferKind.MULTIPLIER and campaign.offer_rule_id and campaign.offer_rule.ends_at <= now:
        return None  # its days are over: nobody is promised them any more
    local = now.astimezone(current_program().tz)
    if campaign.trigger == Trigger.ONCE:
        return None if campaign.completed_once else "once"
    if campaign.trigger == Trigger.WEEKLY:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02}"
    if campaign.trigger == Trigger.MONTHLY:
        return f"{local:%Y-%m}"
    return "entering"


def in_holdout(campaign_id: int, member_id: int, percent: int) -> bool:
    """Held out or not: a hash of campaign and member, the same every time it is asked."""
    digest = hashlib.sha256(f"campaign:{campaign_id}:member:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < percent / 100


@dataclass
class RunResult:
    occurrence: str | None = None
    entered: int = 0
    treated: int = 0
    held_out: int = 0


def campaign_run(*, campaign: Campaign, now: datetime | None = None) -> RunResult:
    """Enter the audience's members for the occurrence due now; safe to run twice, or at once
    with itself (the unique entry decides who pays: the other run finds the member entered)."""
    now = now or timezone.now()
    key = occurrence(campaign, now)
    result = RunResult(occurrence=key)
    if key is None:
        return result
    ids = list(audience.members(campaign.audience, now=now).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        with transaction.atomic():
            rows = [(campaign.pk, member_id, key, Group.HOLDOUT if in_holdout(campaign.pk, member_id,
                                                                                campaign.holdout_percent)
                     else Group.TREATED, now, 0) for member_id in part]
            inserted = bulk.insert_new(CampaignEntry, ("campaign_id", "member_id", "occurrence", "group",
                                                       "entered_at", "offer_points"), rows,
                                       unique=("campaign_id", "member_id", "occurrence"))
            fresh = {member_id: group for (_, member_id, _, group, _, _) in rows
                     if (campaign.pk, member_id, key) in inserted}
            treated = sorted(m for m, group in fresh.items() if group == Group.TREATED)
            _treat(campaign, treated, key, now)
        result.entered += len(fresh)
        result.treated += len(treated)
        result.held_out += len(fresh) - len(treated)
    Campaign.objects.filter(pk=campaign.pk).update(
        last_run_at=now, **({"completed_once": True} if campaign.trigger == Trigger.ONCE else {}))
    return result


def _offer_words(campaign: Campaign) -> str:
    """The offer in words, in the active language (each member's, when filled for them)."""
    if campaign.offer == OfferKind.POINTS:
        return ngettext("%(count)s bonus point", "%(count)s bonus points", campaign.offer_points) % {
            "count": l10n.number(campaign.offer_points)}
    if campaign.offer == OfferKind.COUPON and campaign.offer_reward_id:
        return _("a coupon for %(reward)s") % {"reward": campaign.offer_reward.name}
    if campaign.offer == OfferKind.MULTIPLIER and campaign.offer_multiplier:
        on = ", ".join(_split(campaign.offer_categories) + _split(campaign.offer_skus)) or _("every order")
        return ngettext("%(factor)sx points on %(what)s for %(days)s day",
                        "%(factor)sx points on %(what)s for %(days)s days", campaign.offer_days) % {
            "factor": l10n.decimal(campaign.offer_multiplier.normalize(), None), "what": on,
            "days": campaign.offer_days}
    return ""


def _treat(campaign: Campaign, member_ids: list[int], key: str, now: datetime) -> None:
    """The offer and the message for these newly entered members (in the caller's transaction)."""
    from messaging.services import Note, notify
    from rewards.services import ActivityInput, activities_record, reward_redeem, rule_members_add

    if not member_ids:
        return
    if campaign.offer == OfferKind.MULTIPLIER and campaign.offer_rule_id:
        rule_members_add(rule=campaign.offer_rule, member_ids=member_ids)  # their orders earn more, in its days
    cost = campaign.offer_cost_points
    instead: dict[int, str] = {}
    if cost:
        # Through the engine: a key per campaign, member and occurrence, so nothing is paid twice.
        activities_record(items=[
            ActivityInput(member_id=m, type="campaign", source_key=f"campaign:{campaign.pk}:{m}:{key}",
                          occurred_at=now, description=f"Campaign: {campaign.name}", points=cost)
            for m in member_ids])
        entries = CampaignEntry.objects.filter(campaign=campaign, occurrence=key, member_id__in=member_ids)
        entries.update(offer_points=cost)
        if campaign.offer == OfferKind.COUPON:
            members = {m.pk: m for m in Member.objects.filter(pk__in=member_ids)}
            for member_id in member_ids:
                try:
                    with transaction.atomic():
                        coupon = reward_redeem(member=members[member_id], reward=campaign.offer_reward, now=now).coupon
                        entries.filter(member_id=member_id).update(coupon=coupon)
                except Conflict:
                    # Out of stock, over its limit, or the points went to repay what the member owed:
                    # they keep the points, and the message says points, not a coupon.
                    instead[member_id] = l10n.later(l10n.points, cost)
    words = _words_for(campaign, member_ids, instead)
    if campaign.delivery in (Delivery.SEND, Delivery.OFF):
        notify(purpose=Purpose.OFFERS, messages=campaign.delivery == Delivery.SEND,
               notes=[Note(m, "campaign", *words[m], "/rewards/") for m in member_ids])
    elif campaign.delivery == Delivery.STORE:
        events.emit_many("campaign.message", [
            Emitted(m, {"campaign": campaign.name, "subject": words[m][0],
                        "text": words[m][1] + f"\n{settings.SITE_URL}/rewards/"}) for m in member_ids])


def _wording(campaign: Campaign) -> catalogue.Wording:
    """The campaign's own words, filled in the way every message's are."""
    from rewards.program import current_program

    return catalogue.Wording(_WORDS, campaign.title, campaign.body, "send", {"program": current_program().brand.name})


def _words_for(campaign: Campaign, member_ids: list[int], instead: dict[int, str] | None = None
               ) -> dict[int, tuple[str, str]]:
    from recommendations.selectors import top_recommendation_names
    from rewards.program import current_program
    from rewards.selectors import member_tier_ids

    program = current_program()
    tiers = {tier.pk: tier.name for tier in program.tiers}
    tier_of = member_tier_ids(member_ids) if program.tiers else {}
    words = _wording(campaign)
    # The next reward: the cheapest open to everyone that the member's points do not pay for yet.
    from rewards.models import Reward

    ladder = list(Reward.objects.filter(is_active=True, tiers__isnull=True).order_by("points_cost")
                  .values_list("name", "points_cost"))
    # The member's first "for you" suggestion: one query for the chunk, and only when the words use it.
    recommended = top_recommendation_names(member_ids=member_ids) if words.uses("recommended") else {}
    found = {}
    # The campaign's words are staff's, one text for everyone; the values in them (the offer, the
    # points, the next reward) are written in each member's own language.
    for pk, first_name, points, language in Member.objects.filter(pk__in=member_ids).values_list(
            "pk", "first_name", "points_available", "language"):
        with translation.override(catalogue.language_of(language)):
            ahead = next(((name, cost) for name, cost in ladder if cost > points), None)
            next_reward = _("%(reward)s (%(points)s)") % {"reward": ahead[0], "points": l10n.points(ahead[1])} \
                if ahead else ""
            values = {"first_name": first_name or _("there"), "points": points,
                      "tier": tiers.get(tier_of.get(pk), ""),
                      "offer": (instead or {}).get(pk) or _offer_words(campaign), "next_reward": next_reward,
                      "recommended": recommended.get(pk, "")}
            found[pk] = (words.title(**values), words.body(**values))
    return found


def campaigns_run_due(*, now: datetime | None = None) -> dict[int, RunResult]:
    """Run every running campaign that has an occurrence due (beat, hourly)."""
    now = now or timezone.now()
    return {campaign.pk: campaign_run(campaign=campaign, now=now)
            for campaign in Campaign.objects.filter(status=CampaignStatus.RUNNING).select_related("offer_reward")}


def campaign_test_send(*, campaign: Campaign, user: User) -> int:
    """The campaign's message, with sample values, to the member of staff who asks."""
    import uuid

    from messaging.services import Outgoing, messages_queue

    if not user.email:
        raise Invalid(_("Your account has no e-mail address."), fields={"email": _("Add an address to your account.")})
    words = _wording(campaign)
    values = {**PLACEHOLDERS, "offer": _offer_words(campaign) or PLACEHOLDERS["offer"]}
    with transaction.atomic():
        return messages_queue(items=[Outgoing(
            template="note", purpose=Purpose.TRANSACTIONAL, to=user.email, key=f"campaign-test:{uuid.uuid4().hex}",
            context={"title": words.title(**values), "body": words.body(**values), "url": "/rewards/",
                     "kind": "campaign"})])
