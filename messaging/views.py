"""Unsubscribing without logging in: the signed link in every marketing message (one click, RFC
8058: mail clients POST to it), and the preference centre it leads to."""

import logging

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.services import member_consents_set
from core.errors import DomainError
from messaging import services, sms
from messaging.forms import PreferencesForm

logger = logging.getLogger(__name__)


def _found(token: str) -> dict:
    try:
        return services.unsubscribe_read(token)
    except DomainError:
        raise Http404("This link is not valid.") from None


# No CSRF token: the signed token is the proof, and one-click unsubscribe comes from mail providers.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    found = _found(token)
    if request.method == "POST":
        stopped = services.unsubscribe(token=token)
        return render(request, "messaging/unsubscribed.html", {"stopped": stopped, "token": token,
                                                                "member": found["member"]})
    return render(request, "messaging/unsubscribe.html", {"found": found, "token": token,
                                                           "purpose_label": services.purpose_label(found["purpose"])})


@require_http_methods(["GET", "POST"])
def preferences(request, token: str):
    found = _found(token)
    member = found["member"]
    if member is None:
        raise Http404("This link is not about a member.")
    form = PreferencesForm(request.POST or None, member=member)
    if request.method == "POST" and form.is_valid():
        try:
            member_consents_set(member=member, consents=form.cleaned_data, source="preferences")
        except DomainError as exc:
            for name, problem in exc.fields.items():
                form.add_error(name.removeprefix("consents.") if name.removeprefix("consents.") in form.fields
                               else None, problem)
        else:
            messages.success(request, _("Your preferences are saved."))
            return redirect("messaging:preferences", token=token)
    return render(request, "messaging/preferences.html", {"form": form, "member": member})


@csrf_exempt
@require_POST
def sms_inbound(request):
    """A member's reply to an SMS, as the provider reports it (signed): STOP stops every SMS to
    the number, START allows them again. The provider answers the member itself."""
    reader = getattr(sms.backend(), "inbound", None)
    reply = reader(request) if reader is not None else None
    if reply is None:
        # Most often the URL set at the provider differs from SITE_URL + this path (www, http, a slash).
        logger.warning("SMS reply refused: no valid signature for %s%s", settings.SITE_URL, request.get_full_path())
        return HttpResponseForbidden("Not signed by the SMS provider.")
    services.sms_reply(number=reply.number, text=reply.text)
    return HttpResponse('<?xml version="1.0" encoding="UTF-8"?><Response></Response>', content_type="text/xml")
