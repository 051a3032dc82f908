"""SMS backends: ``SMS_BACKEND`` names one. The console prints (the embedded default), memory
keeps them in ``messaging.sms.outbox`` (tests, like Django's locmem mail backend), Twilio sends
(``pip install "loyalty-loop[sms]"``, with ``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN`` and
``TWILIO_FROM``).

A backend may also read a provider's report of a member's reply (``inbound``: STOP and START,
at ``/messages/providers/sms/inbound/``), and raises ``OptedOut`` when the provider refuses a
number that has stopped messages; either way the number goes on the suppression list."""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

outbox: list[dict] = []
opted_out: set[str] = set()  # the memory backend refuses these numbers, as a provider does after STOP


class OptedOut(Exception):
    """The provider will not send to this number: its owner answered STOP."""


@dataclass(frozen=True)
class Reply:
    number: str
    text: str


class ConsoleBackend:
    def send(self, *, to: str, text: str) -> str:
        sys.stdout.write(f"SMS to {to}: {text}\n")
        sys.stdout.flush()
        return ""


class MemoryBackend:
    def send(self, *, to: str, text: str) -> str:
        if to in opted_out:
            raise OptedOut(to)
        provider_id = f"mem-{uuid.uuid4().hex[:12]}"
        outbox.append({"to": to, "text": text, "id": provider_id})
        return provider_id


class TwilioBackend:
    OPTED_OUT = 21610  # Twilio's error: "Attempt to send to unsubscribed recipient"

    def send(self, *, to: str, text: str) -> str:
        from twilio.base.exceptions import TwilioRestException  # the optional extra
        from twilio.rest import Client

        client = Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)
        try:
            return client.messages.create(to=to, from_=settings.TWILIO_FROM, body=text).sid
        except TwilioRestException as exc:
            if exc.code == self.OPTED_OUT:
                raise OptedOut(to) from exc
            raise

    def inbound(self, request) -> Reply | None:
        """A reply Twilio reports, if its signature (``X-Twilio-Signature``, keyed with the auth
        token, over the URL Twilio called and the form) is right; None otherwise."""
        from twilio.request_validator import RequestValidator

        url = settings.SITE_URL + request.get_full_path()
        signature = request.headers.get("X-Twilio-Signature", "")
        if not settings.TWILIO_AUTH_TOKEN or not RequestValidator(settings.TWILIO_AUTH_TOKEN).validate(
                url, request.POST.dict(), signature):
            return None
        return Reply(number=request.POST.get("From", ""), text=request.POST.get("Body", ""))


def backend():
    return import_string(settings.SMS_BACKEND)()
