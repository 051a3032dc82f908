"""The state the replica test reads, written on the primary by a process of its own (run with
``manage.py shell -c``, the primary as its ``DATABASE_URL``): the test process's own database
is elsewhere. Each step prints what the test needs as JSON on its last line."""

import json
from decimal import Decimal

from django.conf import settings
from django.test import Client

from accounts.models import Partner, Scope, User
from accounts.services import api_key_create, partner_create
from community.models import Product
from community.services import ReviewInput, product_upsert, public_profile_update, review_approve, review_submit
from insights.services import snapshot_compute
from tests.factories import RuleFactory, customer, place_order, set_program


def _shopper(partner: Partner, external_id: str, name: str, euros: str, title: str, staff: User) -> None:
    member = customer(partner, external_id, email=f"{external_id}@example.com", first_name=name)
    place_order(partner, f"order-{external_id}", external_id, lines=(("TEA-1", 1, euros, "tea"),))
    public_profile_update(member=member, is_public=True, display_name=f"{name} the tea lover")
    review = review_submit(member=member, product=Product.objects.get(sku="TEA-1"),
                           data=ReviewInput(5, title, "A fine green tea, fresh and sweet, every morning."))
    review_approve(review_id=review.pk, moderator=staff)


def build() -> None:
    """Ada, public, with 50 points and a published review "Lovely tea"; staff and a partner key."""
    staff = User.objects.create_superuser("staff@example.com", "staff-password-1", name="Sam Staff")
    set_program(pending_days=0, expiry_policy="never", time_zone="UTC", accepted_currencies="EUR")
    RuleFactory(name="1 per EUR", points_per_unit=Decimal("1"))
    partner = partner_create(name="Tea Shop")
    _, key = api_key_create(partner=partner, name="shop", scopes=list(Scope.values))
    product_upsert(partner=partner, sku="TEA-1", name="Green tea", category="tea")
    _shopper(partner, "ada", "Ada", "50.00", "Lovely tea", staff)
    client = Client()
    client.force_login(staff)
    print(json.dumps({"key": key, "session": client.cookies[settings.SESSION_COOKIE_NAME].value}))


def change() -> None:
    """Bob, public, with 80 points and a published review "Second cup"; the nightly snapshot."""
    partner, staff = Partner.objects.get(name="Tea Shop"), User.objects.get(email="staff@example.com")
    _shopper(partner, "bob", "Bob", "80.00", "Second cup", staff)
    print(json.dumps({"snapshot": str(snapshot_compute().day)}))
