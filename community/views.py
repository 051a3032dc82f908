from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.decorators import member_required
from accounts.services import member_get_or_create_for_user
from community import selectors
from community.forms import PublicProfileForm
from community.models import PublicProfile
from community.services import public_profile_update
from loyalty_site.errors import DomainError
from rewards.models import MemberBadge, MemberTier


def index(request):
    member = member_get_or_create_for_user(user=request.user) if request.user.is_authenticated else None
    start_of_month = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    context = {
        "spotlights": list(selectors.spotlights()),
        "boards": [
            selectors.points_leaderboard(title="Points this month", since=start_of_month, member=member),
            selectors.points_leaderboard(title="Points of all time", since=None, member=member),
            *selectors.challenge_leaderboards(member=member),
        ],
        "member": member,
    }
    return render(request, "community/index.html", context)


def member_page(request, member_id: int):
    profile = selectors.public_member(member_id=member_id)
    if profile is None:
        raise Http404("No public profile here.")
    badges = MemberBadge.objects.filter(member_id=member_id).select_related("level__badge").order_by("awarded_at")
    tier = MemberTier.objects.filter(member_id=member_id).select_related("tier").first()
    return render(request, "community/member.html", {"profile": profile, "badges": badges, "tier": tier})


@member_required
@require_http_methods(["GET", "POST"])
def profile(request):
    current = PublicProfile.objects.filter(member=request.member).first()
    initial = {"is_public": current.is_public, "display_name": current.display_name} if current else {
        "display_name": f"{request.member.first_name} {request.member.last_name[:1]}".strip() + (
            "." if request.member.last_name else "")}
    form = PublicProfileForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            public_profile_update(member=request.member, is_public=data["is_public"],
                                  display_name=data["display_name"], avatar=data["avatar"],
                                  remove_avatar=data["remove_avatar"])
        except DomainError as exc:
            for field, problems in exc.fields.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            messages.success(request, "Your community profile is saved.")
            return redirect("community:profile")
    return render(request, "community/profile.html", {"form": form, "current": current})
