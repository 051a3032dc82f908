import json

from django.contrib import messages
from django.contrib.auth import logout
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts import selectors
from accounts.decorators import member_required
from accounts.forms import DeleteAccountForm, ProfileForm
from accounts.services import member_erase, member_export, member_update_profile, notifications_mark_read
from core.errors import DomainError


@member_required
@require_http_methods(["GET", "POST"])
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.member)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            member_update_profile(
                member=request.member, first_name=data["first_name"], last_name=data["last_name"],
                birthday=data["birthday"], phone=data["phone"], consents=form.consents(),
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Your profile is saved.")
            return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form})


@member_required
def export_data(request):
    data = member_export(member=request.member)
    response = HttpResponse(json.dumps(data, indent=2, default=str), content_type="application/json")
    filename = f"loyalty-loop-data-{timezone.localdate():%Y-%m-%d}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@member_required
@require_http_methods(["GET", "POST"])
def delete_account(request):
    form = DeleteAccountForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        member_erase(member=request.member, reason="deleted by the member in the portal")
        logout(request)
        messages.success(request, "Your account is deleted and your personal data erased.")
        return redirect("home")
    return render(request, "accounts/delete.html", {"form": form})


@member_required
def notifications(request):
    page = Paginator(selectors.notifications(member=request.member), 25).get_page(request.GET.get("page"))
    return render(request, "accounts/notifications.html", {"page": page})


@member_required
@require_http_methods(["POST"])
def notifications_read(request):
    marked = notifications_mark_read(member=request.member)
    if marked:
        messages.success(request, f"{marked} notification{'s' if marked != 1 else ''} marked as read.")
    else:
        messages.info(request, "Nothing new: every notification was already read.")
    back = request.POST.get("next")
    if back == "notifications":
        return redirect("accounts:notifications")
    return redirect(f"{reverse('dashboard')}#notes-heading")
