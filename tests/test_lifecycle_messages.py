"""The lifecycle messages built in: a daily digest of points earned (one message, however many
orders), the membership anniversary (caught up when the scheduler was down), a thank-you after an
order, and the monthly statement for members who ask for it; each once, each in the program's
time zone, and a reward within reach beating a statement for the last place under the cap."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.models import Member
from accounts.services import member_consents_set
from messaging import services
from rewards.services import reward_redeem
from tests.factories import RewardFactory, RuleFactory, customer, place_order, refund, set_program

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(tea_shop):
    set_program(pending_days=14, expiry_policy="never", time_zone="UTC")
    RuleFactory(name="1 per EUR")
    return tea_shop


def at(day, hour, minute=0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def test_members_get_one_digest_of_yesterdays_points_however_many_orders(shop, mailoutbox):
    ada = customer(shop, "ada", email="ada@example.com", first_name="Ada")
    customer(shop, "old", email="old@example.com")
    for n, amount in enumerate(("12.00", "30.00", "8.00")):
        place_order(shop, f"o{n}", "ada", lines=(("TEA-1", 1, amount, "tea"),), placed_at=timezone.now())
    # Bob's only order is history sent today: not news of yesterday.
    place_order(shop, "h1", "old", placed_at=timezone.now() - timedelta(days=700))
    tomorrow = timezone.now().date() + timedelta(days=1)
    assert services.points_digest_send(now=at(tomorrow, 7, 30)) == 0  # before 08:00: not yet
    assert services.points_digest_send(now=at(tomorrow, 8, 30)) == 1
    [mail] = list(mailoutbox)
    assert mail.to == ["ada@example.com"] and mail.subject == "You earned 50 points yesterday"
    assert "You have 0 points to spend, and 50 on their way." in mail.body
    assert services.points_digest_send(now=at(tomorrow, 9, 30)) == 0  # once a day
    assert ada.notifications.get().kind == "points_digest"


def test_members_hear_of_their_anniversary_once_and_late_when_the_scheduler_was_down(shop, mailoutbox):
    today = datetime(2027, 6, 20).date()
    veteran = customer(shop, "vet", email="vet@example.com")
    newcomer = customer(shop, "new", email="new@example.com")
    leap = customer(shop, "leap", email="leap@example.com")
    Member.objects.filter(pk=veteran.pk).update(created_at=datetime(2025, 6, 17, 23, 30, tzinfo=UTC))
    Member.objects.filter(pk=newcomer.pk).update(created_at=datetime(2027, 6, 18, 9, 0, tzinfo=UTC))
    Member.objects.filter(pk=leap.pk).update(created_at=datetime(2024, 2, 29, 12, 0, tzinfo=UTC))
    assert services.anniversaries_send(today=today) == 1  # three days late: caught up
    [mail] = list(mailoutbox)
    assert mail.to == ["vet@example.com"] and mail.subject == "2 years with Loyalty Loop"
    assert "a member since June 2025" in mail.body
    assert services.anniversaries_send(today=today) == 0  # once a year
    assert services.anniversaries_send(today=datetime(2027, 2, 28).date()) == 1  # 29 February, in 2027
    assert mailoutbox[-1].to == ["leap@example.com"] and mailoutbox[-1].subject == "3 years with Loyalty Loop"
    set_program(time_zone="Pacific/Auckland")  # 18 June 23:30 UTC is 19 June there: a day later
    Member.objects.filter(pk=veteran.pk).update(created_at=datetime(2025, 6, 18, 23, 30, tzinfo=UTC))
    assert services.anniversaries_send(today=datetime(2028, 6, 18).date()) == 1  # the newcomer's first
    assert mailoutbox[-1].to == ["new@example.com"] and mailoutbox[-1].subject == "1 year with Loyalty Loop"
    assert services.anniversaries_send(today=datetime(2028, 6, 19).date()) == 1  # the veteran's third
    assert mailoutbox[-1].to == ["vet@example.com"] and mailoutbox[-1].subject == "3 years with Loyalty Loop"


def test_an_order_is_followed_up_once_with_its_points_and_a_refunded_one_is_not(shop, mailoutbox):
    customer(shop, "ada", email="ada@example.com")
    placed = timezone.now() - timedelta(days=2, hours=1)
    place_order(shop, "A-1", "ada", lines=(("TEA-1", 1, "45.00", "tea"),), placed_at=placed)
    place_order(shop, "A-2", "ada", placed_at=placed)
    refund(shop, "A-2", refund_id="r1", amount="10.00")
    place_order(shop, "A-3", "ada", placed_at=timezone.now() - timedelta(hours=5))  # too recent
    assert services.post_purchase_send() == 1
    [mail] = list(mailoutbox)
    assert mail.subject == "Thank you for your order A-1"
    available = placed + timedelta(days=14)
    assert f"It earned you 45 points, yours to spend from {available:%-d %B %Y}." in mail.body
    assert services.post_purchase_send() == 0
    services.messaging_settings_update(actor_user=None, changes={"post_purchase_days": 0})
    assert services.post_purchase_send(now=timezone.now() + timedelta(days=3)) == 0  # staff: never


def test_the_monthly_statement_goes_only_to_members_who_asked_for_it(shop, mailoutbox, alice, bob):
    member_consents_set(member=alice, consents={"statements": "email"}, source="portal")
    set_program(pending_days=0, expiry_policy="never", time_zone="UTC")
    assert customer(shop, "alice", email="alice@example.com").pk == alice.pk  # the store knows her too
    place_order(shop, "S-1", "alice", lines=(("TEA-1", 1, "320.00", "tea"),), placed_at=timezone.now())
    reward_redeem(member=alice, reward=RewardFactory(name="Tin of tea", points_cost=200))
    now = timezone.now()
    first = (now.replace(day=1) + timedelta(days=32)).replace(day=1)
    month = f"{now:%B %Y}"
    assert services.statements_send(now=at(first, 8)) == 0  # the 1st, before 09:00
    assert services.statements_send(now=at(first, 9, 30)) == 1
    [mail] = list(mailoutbox)
    assert mail.to == ["alice@example.com"] and mail.subject == f"Your {month} statement"
    assert f"In {month} you earned 320 points and spent 200. Your balance is 120 points." in mail.body
    assert services.statements_send(now=at(first + timedelta(days=1), 10)) == 0  # once a month
    assert services.statements_send(now=at(first + timedelta(days=9), 10)) == 0  # past the first week
    assert not bob.notifications.filter(kind="statement").exists()


def test_a_reward_within_reach_beats_the_statement_for_the_last_place_under_the_cap(alice, mailoutbox):
    from messaging.catalogue import wording
    from messaging.models import Message, Purpose

    member_consents_set(member=alice, consents={"statements": "email"}, source="portal")
    services.messaging_settings_update(actor_user=None, changes={"weekly_cap": 1})
    with services.transaction.atomic():
        services.notify(notes=[wording("statement").note(alice.pk, month="May 2027", earned="1", spent="0",
                                                         balance="1", expiring="")], purpose=Purpose.STATEMENTS)
        services.notify(notes=[wording("reward_unlocked").note(alice.pk, reward="Tin of tea", cost="200")])
    assert [m.subject for m in mailoutbox] == ["You can now redeem Tin of tea"]
    statement = Message.objects.get(purpose=Purpose.STATEMENTS)
    assert statement.status == "queued" and statement.send_after > timezone.now() + timedelta(days=6)
