import pytest

from accounts.models import ExternalId, Member
from accounts.services import member_upsert_for_partner
from tests.concurrency import run_concurrently
from tests.factories import same_store

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_upserts_of_one_customer_make_one_member(tea_shop):
    results = run_concurrently(
        lambda i: member_upsert_for_partner(
            partner=tea_shop, external_id="cust-42", data={"email": "ada@example.com", "first_name": f"Ada{i}"}
        ),
        12,
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Member.objects.count() == 1
    assert ExternalId.objects.count() == 1
    assert sum(1 for _, created in results if created) == 1


def test_two_partners_of_one_store_sending_one_email_at_once_share_one_member(tea_shop, coffee_bar):
    same_store(tea_shop, coffee_bar)
    partners = [tea_shop, coffee_bar] * 5
    results = run_concurrently(
        lambda i: member_upsert_for_partner(
            partner=partners[i], external_id=f"{partners[i].pk}-x", data={"email": "grace@example.com"}
        ),
        10,
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Member.objects.count() == 1
    assert ExternalId.objects.count() == 2


def test_two_stores_sending_one_email_at_once_make_one_member_known_to_one_of_them(tea_shop, coffee_bar):
    partners = [tea_shop, coffee_bar] * 5
    results = run_concurrently(
        lambda i: member_upsert_for_partner(
            partner=partners[i], external_id=f"{partners[i].pk}-x", data={"email": "grace@example.com"}
        ),
        10,
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert Member.objects.count() == 1
    assert ExternalId.objects.count() == 1
    winner = ExternalId.objects.get().partner
    assert all(getattr(r, "code", None) == "email_taken" for r in refused), refused
    assert len(refused) == 5
    assert {partners[i] for i, r in enumerate(results) if not isinstance(r, Exception)} == {winner}


def test_two_relays_at_once_hand_each_event_on_exactly_once(tea_shop, settings):
    from core.models import OutboxEvent
    from core.tasks import relay_outbox
    from tests import consumers

    settings.OUTBOX_CONSUMERS = ["tests.consumers.remember"]
    settings.OUTBOX_RELAY_ON_COMMIT = False  # this test's relays, not a worker's, take the events
    consumers.received.clear()
    from accounts.services import members_ensure_for_partner

    members_ensure_for_partner(partner=tea_shop, rows={f"c{n}": {} for n in range(2500)})
    assert OutboxEvent.objects.filter(type="member.created").count() == 2500
    results = run_concurrently(lambda i: relay_outbox(), 4)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 2500
    assert len(consumers.received) == 2500
    assert len({event_id for event_id, _, _ in consumers.received}) == 2500
    assert not OutboxEvent.objects.filter(relayed_at__isnull=True).exists()
