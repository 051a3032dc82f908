import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import i18n
from django.views.decorators.http import require_http_methods, require_POST

from accounts import selectors
from accounts.decorators import member_required
from accounts.forms import DeleteAccountForm, ProfileForm
from accounts.models import Member
from accounts.services import member_erase, member_export, member_update_profile, notifications_mark_read
from core.errors import DomainError
from core.middleware import SESSION_LANGUAGE


def _keep_language(request, response, language: str) -> None:
    """The portal in this language from now on, on this device (cookie) and any other (session)."""
    if not language:
        return
    request.session[SESSION_LANGUAGE] = language
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, max_age=settings.LANGUAGE_COOKIE_AGE,
                        path=settings.LANGUAGE_COOKIE_PATH, domain=settings.LANGUAGE_COOKIE_DOMAIN,
                        secure=settings.LANGUAGE_COOKIE_SECURE, httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                        samesite=settings.LANGUAGE_COOKIE_SAMESITE)


@require_POST
def set_language(request):
    """The page's language switcher: Django's ``set_language`` (a cookie, back to the page); a
    signed-in member's choice is also kept on the member, for the messages we send them."""
    response = i18n.set_language(request)
    chosen = request.POST.get(i18n.LANGUAGE_QUERY_PARAMETER, "")
    if request.user.is_authenticated and chosen in dict(settings.LANGUAGES):
        member = Member.objects.filter(user=request.user, erased_at__isnull=True).first()
        if member is not None:
            member_update_profile(member=member, language=chosen)
            request.session[SESSION_LANGUAGE] = chosen
    return response


@member_required
@require_http_methods(["GET", "POST"])
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.member, language=translation.get_language())
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            member = member_update_profile(
                member=request.member, first_name=data["first_name"], last_name=data["last_name"],
                birthday=data["birthday"], phone=data["phone"], consents=form.consents(),
                language=data["language"] or None,
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            with translation.override(member.language or settings.LANGUAGE_CODE):
                messages.success(request, _("Your profile is saved."))
            response = redirect("accounts:profile")
            _keep_language(request, response, member.language)
            return response
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
        messages.success(request, _("Your account is deleted and your personal data erased."))
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
        messages.success(request, ngettext("%(count)s notification marked as read.",
                                           "%(count)s notifications marked as read.", marked) % {"count": marked})
    else:
        messages.info(request, _("Nothing new: every notification was already read."))
    back = request.POST.get("next")
    if back == "notifications":
        return redirect("accounts:notifications")
    return redirect(f"{reverse('dashboard')}#notes-heading")
