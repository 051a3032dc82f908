"""Staff's say over every kind of message: new words with the kind's placeholders (an unknown one
is refused, named, next to the field, the typed text kept), lifecycle messages handed to the
store's own sender as a campaign.message event or switched off, a preview with sample values and
a test send to oneself."""

import pytest
from django.conf import settings
from django.utils.html import escape

from accounts.models import AuditLog
from core.errors import Invalid
from core.models import OutboxEvent
from messaging import services
from messaging.models import MessageKindSettings
from rewards.services import points_adjust
from tests.conftest import make_portal_member
from tests.factories import RewardFactory

pytestmark = pytest.mark.django_db


def change_url(kind: str) -> str:
    services.message_kinds_ensure()
    return f"/admin/messaging/messagekindsettings/{MessageKindSettings.objects.get(kind=kind).pk}/change/"


def test_staff_reword_a_message_and_members_get_the_new_words_in_mail_and_portal(staff_client, staff, alice,
                                                                                 mailoutbox):
    response = staff_client.post(change_url("reward_unlocked"), {
        "delivery": "send", "title": "{reward} is yours for the taking", "body": "Only {cost} points at {program}."})
    assert response.status_code == 302
    assert AuditLog.objects.get(action="messaging.kind_changed", actor_user=staff).after["title"] == \
        "{reward} is yours for the taking"
    RewardFactory(name="Stoneware cup", points_cost=300)
    points_adjust(member=alice, points=500, reason="test")
    assert services.rewards_unlocked_send() == 1
    [mail] = list(mailoutbox)
    assert mail.subject == "Stoneware cup is yours for the taking" and "Only 300 points at Loyalty Loop." in mail.body
    assert alice.notifications.get().title == "Stoneware cup is yours for the taking"
    # Emptied, the words are the defaults again.
    staff_client.post(change_url("reward_unlocked"), {"delivery": "send", "title": "", "body": ""})
    assert MessageKindSettings.objects.get(kind="reward_unlocked").title == ""


@pytest.mark.parametrize("title, words", [
    ("Hi {first_nam}", "Unknown placeholder {first_nam}: this message can use {cost}, {program}, {reward}."),
    ("{reward.__class__}", "Unknown placeholder {reward.__class__}"),
    ("{cost:>10}", "Write {cost} without a format"),
    ("50% off {reward", "A brace is not closed"),
])
def test_words_with_an_unknown_or_odd_placeholder_are_refused_next_to_the_field(staff_client, title, words):
    response = staff_client.post(change_url("reward_unlocked"), {"delivery": "send", "title": title, "body": "Fine."})
    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["title"]
    assert error.startswith(words)
    assert f'value="{escape(title)}"' in response.content.decode()  # what staff typed is kept
    assert MessageKindSettings.objects.get(kind="reward_unlocked").title == ""
    with pytest.raises(Invalid) as refused:  # the service refuses it too, whoever calls it
        services.message_kind_update(actor_user=None, kind="reward_unlocked", changes={"title": title})
    assert refused.value.fields["title"][0].startswith(words)


def test_a_message_about_the_members_own_doings_cannot_be_switched_off():
    with pytest.raises(Invalid) as refused:
        services.message_kind_update(actor_user=None, kind="review_rejected", changes={"delivery": "off"})
    assert "always sent" in refused.value.fields["delivery"][0]


def test_a_lifecycle_message_handed_to_the_store_goes_out_as_a_campaign_message_event(alice, mailoutbox):
    quiet = make_portal_member("quiet@example.com", consents={"reminders": "none"})
    services.message_kind_update(actor_user=None, kind="reward_unlocked", changes={"delivery": "store"})
    RewardFactory(name="Stoneware cup", points_cost=300)
    for member in (alice, quiet):
        points_adjust(member=member, points=500, reason="test")
    assert services.rewards_unlocked_send() == 2
    assert list(mailoutbox) == []  # we send nothing...
    [event] = OutboxEvent.objects.filter(type="campaign.message")  # ...the store gets the words for Alice only
    assert event.member_id == alice.pk
    assert event.data == {"campaign": "reward_unlocked", "subject": "You can now redeem Stoneware cup",
                          "text": f"It takes 300 points, and you have them.\n{settings.SITE_URL}/rewards/"}
    assert quiet.notifications.get().kind == "reward_unlocked"  # the portal tells both


def test_every_kind_is_listed_and_previewed_with_sample_values_and_staff_can_send_a_test(staff_client, staff,
                                                                                        mailoutbox):
    from messaging.catalogue import KINDS

    listing = staff_client.get("/admin/messaging/messagekindsettings/").content.decode()
    assert all(str(kind.label) in listing for kind in KINDS.values())
    page = staff_client.get(change_url("points_expiring")).content.decode()
    assert "300 of your points expire on 3 March 2027" in page  # the preview on the page
    row = MessageKindSettings.objects.get(kind="points_expiring")
    html = staff_client.get(f"/admin/messaging/messagekindsettings/{row.pk}/preview/").content.decode()
    assert "Hello Ada," in html and "300 of your points expire on 3 March 2027" in html
    review = MessageKindSettings.objects.get(kind="review_request")
    assert "Review Glass kettle" in staff_client.get(
        f"/admin/messaging/messagekindsettings/{review.pk}/preview/").content.decode()
    response = staff_client.post(f"/admin/messaging/messagekindsettings/{row.pk}/test/", follow=True)
    assert f"on its way to {staff.email}" in response.content.decode()
    [mail] = list(mailoutbox)
    assert mail.to == [staff.email] and mail.subject == "300 of your points expire on 3 March 2027"
