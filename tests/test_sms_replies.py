"""A member who answers STOP to an SMS gets no more: from the provider's signed report of the
reply (Twilio's own code signs it here, as Twilio does), or from the provider refusing the number;
START lifts it. A report without the provider's signature changes nothing."""

import pytest
from django.conf import settings
from twilio.request_validator import RequestValidator

from messaging import sms
from messaging.models import Message, MessageStatus, Suppression
from messaging.services import Note, notify
from tests.conftest import make_portal_member

pytestmark = pytest.mark.django_db

INBOUND = "/messages/providers/sms/inbound/"
TOKEN = "twilio-auth-token-for-tests"


@pytest.fixture
def sam(db):
    return make_portal_member("sam@example.com", first_name="Sam", phone="+441234567890",
                              consents={"reminders": "sms"})


def reply(client, settings_, text: str, *, token: str = TOKEN):
    """Post a reply as Twilio does: its form, signed with the auth token over the URL it calls."""
    settings_.SMS_BACKEND, settings_.TWILIO_AUTH_TOKEN = "messaging.sms.TwilioBackend", TOKEN
    form = {"From": "+441234567890", "To": "+15005550006", "Body": text, "MessageSid": "SM123"}
    signature = RequestValidator(token).compute_signature(settings.SITE_URL + INBOUND, form)
    try:
        return client.post(INBOUND, form, HTTP_X_TWILIO_SIGNATURE=signature)
    finally:
        settings_.SMS_BACKEND = "messaging.sms.MemoryBackend"


def test_stop_stops_every_sms_to_the_number_and_start_allows_them_again(client, settings, sam, sms_outbox):
    response = reply(client, settings, "Stop")
    assert response.status_code == 200 and b"<Response>" in response.content
    assert Suppression.objects.get(address="+441234567890").reason == "stop"
    notify(notes=[Note(sam.pk, "tier_up", "Welcome to Silver!")])
    assert list(sms_outbox) == []
    assert Message.objects.get().status == MessageStatus.SKIPPED
    assert reply(client, settings, "START").status_code == 200
    notify(notes=[Note(sam.pk, "tier_up", "Welcome to Gold!")])
    assert [text["text"] for text in sms_outbox] == ["Loyalty Loop: Hello Sam, Welcome to Gold!"]


def test_a_reply_not_signed_by_the_provider_changes_nothing(client, settings, sam):
    assert reply(client, settings, "STOP", token="someone-elses-token").status_code == 403
    settings.SMS_BACKEND = "messaging.sms.TwilioBackend"
    assert client.post(INBOUND, {"From": "+441234567890", "Body": "STOP"}).status_code == 403
    assert not Suppression.objects.exists()


def test_start_does_not_lift_a_suppression_staff_or_a_bounce_made(client, settings, sam):
    Suppression.objects.create(address="+441234567890", reason="complained")
    reply(client, settings, "START")
    assert Suppression.objects.get().reason == "complained"


def test_a_number_the_provider_refuses_is_suppressed_and_not_retried(sam, sms_outbox):
    sms.opted_out.add("+441234567890")
    try:
        notify(notes=[Note(sam.pk, "tier_up", "Welcome to Silver!")])
        assert list(sms_outbox) == []
    finally:
        sms.opted_out.clear()
    message = Message.objects.get()
    assert message.status == MessageStatus.SKIPPED and "suppressed" in message.error
    assert Suppression.objects.get(address="+441234567890").reason == "stop"
