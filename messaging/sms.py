"""SMS backends: ``SMS_BACKEND`` names one. The console prints (the embedded default), memory
keeps them in ``messaging.sms.outbox`` (tests, like Django's locmem mail backend), Twilio sends
(``pip install "loyalty-loop[sms]"``, with ``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN`` and
``TWILIO_FROM``)."""

from __future__ import annotations

import sys
import uuid

from django.conf import settings
from django.utils.module_loading import import_string

outbox: list[dict] = []


class ConsoleBackend:
    def send(self, *, to: str, text: str) -> str:
        sys.stdout.write(f"SMS to {to}: {text}\n")
        sys.stdout.flush()
        return ""


class MemoryBackend:
    def send(self, *, to: str, text: str) -> str:
        provider_id = f"mem-{uuid.uuid4().hex[:12]}"
        outbox.append({"to": to, "text": text, "id": provider_id})
        return provider_id


class TwilioBackend:
    def send(self, *, to: str, text: str) -> str:
        from twilio.rest import Client  # the optional extra

        client = Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)
        return client.messages.create(to=to, from_=settings.TWILIO_FROM, body=text).sid


def backend():
    return import_string(settings.SMS_BACKEND)()
