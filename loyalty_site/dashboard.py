"""The owner's dashboard, the admin's front page: the program's health from the latest insights
snapshot (the last 30 days against the 30 before, each figure with its trend and a link to its
detail) and how much waits in each queue staff work through. A read across apps, so it lives in
the project root, which may import every app."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse
from django.utils.translation import gettext as _

from core import l10n


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    change: str  # "+12" / "-3.5 points" / "" against the previous 30 days
    direction: str  # "up", "down" or "" (for the arrow; whether up is good depends on the figure)
    url: str


@dataclass(frozen=True)
class Queue:
    label: str
    count: int
    url: str


def _change(now, before, *, kind: str) -> tuple[str, str]:
    """The change against the previous period, in words, and its direction."""
    if now is None or before is None:
        return "", ""
    delta = float(now) - float(before)
    if abs(delta) < 1e-9:
        return _("no change"), ""
    sign = "+" if delta > 0 else "-"
    if kind == "share":
        text = _("%(change)s percentage points") % {"change": sign + l10n.decimal(abs(delta), 1)}
    elif kind == "money":
        text = sign + l10n.decimal(abs(delta), 2)
    else:
        text = sign + l10n.number(round(abs(delta)))
    return text, "up" if delta > 0 else "down"


def _number(value, *, money: bool = False, share: bool = False) -> str:
    if value is None:
        return "-"
    if share:
        return f"{l10n.decimal(float(value), 1)}%"
    return l10n.decimal(float(value), 2) if money else l10n.number(value)


def owner_dashboard() -> dict:
    """Figures and queues for the admin's index; a fixed number of queries, however big the program."""
    from campaigns.models import Campaign, CampaignStatus
    from community.models import Answer, ModerationStatus, Question, Review
    from feedback.models import FollowUp, Referral, ReferralStatus
    from insights.models import MemberInsight, Snapshot
    from messaging.models import Message, MessageStatus
    from webhooks.models import WebhookEndpoint

    snapshot = Snapshot.objects.order_by("-day").first()
    figures: list[Figure] = []
    if snapshot is not None:
        now, before = snapshot.overview["30"]["current"], snapshot.overview["30"]["previous"]
        currency = snapshot.currency
        overview = reverse("insights:overview")
        for key, label, kind in (
            ("members", _("Members"), "count"), ("new_members", _("New members"), "count"),
            ("active_members", _("Active members (bought in 30 days)"), "count"),
            ("redeemed_share", _("Members who redeemed"), "share"),
            ("revenue", _("Revenue from members, %(currency)s") % {"currency": currency}, "money"),
            ("points_issued", _("Points issued"), "count"), ("points_redeemed", _("Points redeemed"), "count"),
            ("points_expired", _("Points expired"), "count"), ("nps", "NPS", "count"),
        ):
            change, direction = _change(now.get(key), before.get(key), kind=kind)
            figures.append(Figure(label, _number(now.get(key), money=kind == "money", share=kind == "share"),
                                  change, direction, overview))
        liability = snapshot.overview.get("liability", {})
        figures.append(Figure(_("Points liability, %(currency)s") % {"currency": currency},
                              _number(liability.get("liability"), money=True), "", "", overview))
        at_risk = MemberInsight.objects.filter(m__gte=4, p_alive__lte=0.5).count()
        figures.append(Figure(_("Valuable members at risk"), l10n.number(at_risk), "", "", reverse("insights:at-risk")))
    queues = [
        Queue(_("Reviews waiting for moderation"), Review.objects.filter(status=ModerationStatus.PENDING).count(),
              reverse("admin:community_review_changelist") + "?status__exact=pending"),
        Queue(_("Questions and answers waiting"),
              Question.objects.filter(status=ModerationStatus.PENDING).count()
              + Answer.objects.filter(status=ModerationStatus.PENDING).count(),
              reverse("admin:community_question_changelist") + "?status__exact=pending"),
        Queue(_("Referrals flagged for a decision"), Referral.objects.filter(status=ReferralStatus.HELD).count(),
              reverse("admin:feedback_referral_changelist") + "?status__exact=held"),
        Queue(_("Detractors to follow up"), FollowUp.objects.filter(handled_at__isnull=True).count(),
              reverse("admin:feedback_followup_changelist")),
        Queue(_("Messages that failed"), Message.objects.filter(status=MessageStatus.FAILED).count(),
              reverse("admin:messaging_message_changelist") + "?status__exact=failed"),
        Queue(_("Webhook endpoints disabled"), WebhookEndpoint.objects.filter(active=False).count(),
              reverse("admin:webhooks_webhookendpoint_changelist")),
        Queue(_("Campaigns running"), Campaign.objects.filter(status=CampaignStatus.RUNNING).count(),
              reverse("admin:campaigns_campaign_changelist") + "?status__exact=running"),
    ]
    return {"snapshot": snapshot, "figures": figures, "queues": queues}
