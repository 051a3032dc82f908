"""The catalogue of domain events and the outbox: events are written in the transaction of their
change (none without it, none lost with it), reactions are wired only there, and the relay hands
each event on once."""

import pytest
from django.db import transaction
from django.utils.module_loading import import_string

from accounts.models import Member
from accounts.services import member_upsert_for_partner
from core import events
from core.models import OutboxEvent
from core.tasks import relay_outbox
from tests import consumers

pytestmark = pytest.mark.django_db

PUBLIC = ["member.created", "member.updated", "member.erased", "points.earned", "points.available", "points.spent",
          "points.reversed", "points.expired", "points.adjusted", "points.expiring", "tier.changed",
          "tier.downgrade_warning", "badge.awarded", "challenge.completed", "reward.redeemed", "coupon.used",
          "review.approved", "review.rejected", "survey.completed", "referral.converted", "referral.rewarded",
          "campaign.message", "ping"]


def test_the_catalogue_holds_every_public_event_of_the_contract_and_its_reactions_exist():
    assert sorted(name for name, event in events.CATALOGUE.items() if event.public) == sorted(PUBLIC)
    for event in events.CATALOGUE.values():
        assert event.doc
        for path in event.reactions:
            assert callable(import_string(path)), path


def test_a_new_member_is_announced_in_the_outbox_with_the_change(tea_shop):
    member, _ = member_upsert_for_partner(partner=tea_shop, external_id="c-1", data={"email": "ada@example.com"})
    event = OutboxEvent.objects.get(type="member.created")
    assert event.member_id == member.pk
    assert event.event_id.startswith("evt_") and len(event.event_id) == 36
    member_upsert_for_partner(partner=tea_shop, external_id="c-1", data={"first_name": "Ada"})
    updated = OutboxEvent.objects.get(type="member.updated")
    assert updated.data == {"changed": ["first_name"], "source": "api"}
    member_upsert_for_partner(partner=tea_shop, external_id="c-1", data={"first_name": "Ada"})
    assert OutboxEvent.objects.filter(type="member.updated").count() == 1  # nothing changed: no event


def test_a_change_that_rolls_back_leaves_no_event(tea_shop):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        member_upsert_for_partner(partner=tea_shop, external_id="c-1", data={"email": "ada@example.com"})
        raise Boom
    assert not Member.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_public_event_outside_a_transaction_is_refused(alice):
    with pytest.raises(RuntimeError, match="outside a transaction"):
        events.emit("points.adjusted", member_id=alice.pk, data={"points": 5})


def test_the_relay_hands_each_event_on_once_and_marks_it(tea_shop, settings):
    settings.OUTBOX_CONSUMERS = ["tests.consumers.remember"]
    consumers.received.clear()
    for n in range(3):
        member_upsert_for_partner(partner=tea_shop, external_id=f"c-{n}", data={})
    relay_outbox()
    relay_outbox()
    assert [kind for _, kind, _ in consumers.received] == ["member.created"] * 3
    assert len({event_id for event_id, _, _ in consumers.received}) == 3
    assert not OutboxEvent.objects.filter(relayed_at__isnull=True).exists()


def test_erasure_is_announced_and_the_other_apps_react(tea_shop, alice):
    from accounts.services import member_erase
    from community.models import PublicProfile
    from community.services import public_profile_update

    public_profile_update(member=alice, is_public=True, display_name="Ali")
    member_erase(member=alice)
    assert OutboxEvent.objects.filter(type="member.erased", member=alice).count() == 1
    assert not PublicProfile.objects.filter(member=alice).exists()  # community's reaction ran


def _outbox(member_id):
    return [(e.type, e.data["points"]) for e in OutboxEvent.objects.filter(member_id=member_id).order_by("id")
            if e.type.startswith("points.")]


def test_every_movement_of_points_is_announced_on_every_database(api, tea_shop):
    from rewards.models import Coupon
    from rewards.services import points_adjust
    from tests.factories import RewardFactory, RuleFactory, order_payload, set_program

    set_program(pending_days=14)
    RuleFactory(name="1 per EUR")
    member, _ = member_upsert_for_partner(partner=tea_shop, external_id="cust-42", data={})
    # A single order (on PostgreSQL, the one-statement path) and a batch (the general path).
    assert api.post("/api/v1/orders/", order_payload("1", "cust-42", lines=(("T", 3, "10.00", "tea"),)),
                    format="json").status_code == 201
    api.post("/api/v1/orders/batch/", {"orders": [order_payload("2", "cust-42")]}, format="json")
    api.post("/api/v1/orders/1/refunds/", {"refund_id": "r-1", "lines": [{"sku": "T", "quantity": 1}]}, format="json")
    points_adjust(member=member, points=600, reason="goodwill")
    reward = RewardFactory(points_cost=500)
    api.post("/api/v1/redemptions/", {"member": "cust-42", "reward": reward.pk}, format="json")
    assert _outbox(member.pk) == [("points.earned", 30), ("points.earned", 10), ("points.reversed", -10),
                                  ("points.adjusted", 600), ("points.spent", -500)]
    earned = OutboxEvent.objects.filter(type="points.earned").order_by("id").first()
    assert (earned.data["pending"], earned.data["description"]) == (True, "Order 1")
    assert Coupon.objects.count() == 1
