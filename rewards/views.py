from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.decorators import member_required
from core.errors import DomainError
from rewards import selectors
from rewards.models import Challenge, EntryKind, Reward
from rewards.services import progress as progress_services
from rewards.services import reward_redeem


@member_required
def history(request):
    kind = request.GET.get("kind") or None
    if kind not in EntryKind.values:
        kind = None
    page = Paginator(selectors.history(member=request.member, kind=kind), 25).get_page(request.GET.get("page"))
    return render(request, "rewards/history.html", {"page": page, "kind": kind, "kinds": EntryKind.choices})


def earn(request):
    """Ways to earn, for members and for visitors deciding whether to join."""
    return render(request, "rewards/earn.html", {"ways": selectors.ways_to_earn()})


@member_required
def catalog(request):
    return render(request, "rewards/catalog.html", {"items": selectors.catalog(member=request.member)})


@member_required
@require_http_methods(["GET", "POST"])
def redeem(request, reward_id: int):
    reward = get_object_or_404(Reward, pk=reward_id, is_active=True)
    item = next((i for i in selectors.catalog(member=request.member) if i.reward.pk == reward.pk), None)
    if request.method == "POST":
        try:
            redemption = reward_redeem(member=request.member, reward=reward)
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("rewards:catalog")
        messages.success(request, _("Redeemed! Your coupon code is %(code)s.") % {"code": redemption.coupon.code})
        return redirect("rewards:coupons")
    return render(request, "rewards/redeem.html", {
        "reward": reward, "item": item, "after": request.member.points_available - reward.points_cost,
    })


@member_required
def coupons(request):
    page = Paginator(selectors.coupons(member=request.member), 25).get_page(request.GET.get("page"))
    return render(request, "rewards/coupons.html", {"page": page})


@member_required
def tier(request):
    progress = selectors.tier_progress(member=request.member)
    history = request.member.tier_changes.select_related("from_tier", "to_tier").order_by("-created_at")[:20]
    return render(request, "rewards/tier.html", {"progress": progress, "history": history})


@member_required
def badges(request):
    return render(request, "rewards/badges.html", {"cards": selectors.badge_cards(member=request.member)})


@member_required
def challenges(request):
    active, finished = selectors.challenge_cards(member=request.member)
    return render(request, "rewards/challenges.html", {"active": active, "finished": finished})


@member_required
@require_http_methods(["POST"])
def challenge_join(request, challenge_id: int):
    challenge = get_object_or_404(Challenge, pk=challenge_id)
    try:
        progress_services.challenge_join(member=request.member, challenge=challenge)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("You joined “%(challenge)s”. Good luck!") % {"challenge": challenge.name})
    return redirect("rewards:challenges")
