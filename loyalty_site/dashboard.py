"""The owner's dashboard, the admin's front page: the program's health from the latest insights
snapshot (the last 30 days against the 30 before, each figure with its trend and a link to its
detail) and how much waits in each queue staff work through. A read across apps, so it lives in
the project root, which may import every app."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse


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
        return "no change", ""
    text = {"share": f"{delta:+,.1f} points", "money": f"{delta:+,.2f}"}.get(kind, f"{delta:+,.0f}")
    return text, "up" if delta > 0 else "down"


def _number(value, *, money: bool = False, share: bool = False) -> str:
    if value is None:
        return "-"
    if share:
        return f"{float(value):.1f}%"
    return f"{float(value):,.2f}" if money else f"{int(value):,}"


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
            ("members", "Members", "count"), ("new_members", "New members", "count"),
            ("active_members", "Active members (bought in 30 days)", "count"),
            ("redeemed_share", "Members who redeemed", "share"),
            ("revenue", f"Revenue from members, {currency}", "money"),
            ("points_issued", "Points issued", "count"), ("points_redeemed", "Points redeemed", "count"),
            ("points_expired", "Points expired", "count"), ("nps", "NPS", "count"),
        ):
            change, direction = _change(now.get(key), before.get(key), kind=kind)
            figures.append(Figure(label, _number(now.get(key), money=kind == "money", share=kind == "share"),
                                  change, direction, overview))
        liability = snapshot.overview.get("liability", {})
        figures.append(Figure(f"Points liability, {currency}", _number(liability.get("liability"), money=True), "", "",
                              overview))
        at_risk = MemberInsight.objects.filter(m__gte=4, p_alive__lte=0.5).count()
        figures.append(Figure("Valuable members at risk", f"{at_risk:,}", "", "", reverse("insights:at-risk")))
    queues = [
        Queue("Reviews waiting for moderation", Review.objects.filter(status=ModerationStatus.PENDING).count(),
              reverse("admin:community_review_changelist") + "?status__exact=pending"),
        Queue("Questions and answers waiting",
              Question.objects.filter(status=ModerationStatus.PENDING).count()
              + Answer.objects.filter(status=ModerationStatus.PENDING).count(),
              reverse("admin:community_question_changelist") + "?status__exact=pending"),
        Queue("Referrals flagged for a decision", Referral.objects.filter(status=ReferralStatus.HELD).count(),
              reverse("admin:feedback_referral_changelist") + "?status__exact=held"),
        Queue("Detractors to follow up", FollowUp.objects.filter(handled_at__isnull=True).count(),
              reverse("admin:feedback_followup_changelist")),
        Queue("Messages that failed", Message.objects.filter(status=MessageStatus.FAILED).count(),
              reverse("admin:messaging_message_changelist") + "?status__exact=failed"),
        Queue("Webhook endpoints disabled", WebhookEndpoint.objects.filter(active=False).count(),
              reverse("admin:webhooks_webhookendpoint_changelist")),
        Queue("Campaigns running", Campaign.objects.filter(status=CampaignStatus.RUNNING).count(),
              reverse("admin:campaigns_campaign_changelist") + "?status__exact=running"),
    ]
    return {"snapshot": snapshot, "figures": figures, "queues": queues}
