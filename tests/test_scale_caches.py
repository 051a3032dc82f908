"""What each process keeps in memory agrees across processes: two web servers of their own, on the
test database and the shared cache, refuse a revoked key, apply a changed earning rule and check a
new referral 0.1 s after the change (``REQUEST_VERSIONS_MAX_AGE``), well within the second asked."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.services import api_key_create, api_key_revoke
from core.process_cache import REQUEST_VERSIONS_MAX_AGE
from rewards.services import earning_rule_save
from tests.conftest import ALL_SCOPES
from tests.factories import RuleFactory, set_program

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(port: int, key: str, method: str = "GET", path: str = "/api/v1/rewards/", body: dict | None = None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Api-Key {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def two_servers(tmp_path):
    """Two gunicorn servers of one process each (two processes that share nothing in memory)."""
    cache = settings.CACHES["default"]
    if not cache["BACKEND"].endswith("RedisCache"):
        pytest.skip("needs a shared cache (CACHE_URL=redis://...)")
    database_url = settings.DATABASE_URL.rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
    # Tasks run in the server that queues them (no broker): what one process does shows in its answers.
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "CELERY_BROKER_URL")}
    env.update(DATABASE_URL=database_url, CACHE_URL=cache["LOCATION"], API_RATE_LIMIT="100000/min")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    ports, processes = [free_port(), free_port()], []
    for port in ports:
        log = open(tmp_path / f"gunicorn-{port}.log", "w")  # noqa: SIM115  closed with the process
        processes.append(subprocess.Popen([str(gunicorn), "loyalty_site.wsgi", "--workers", "1", "--bind",
                                           f"127.0.0.1:{port}"], cwd=Path(__file__).resolve().parent.parent,
                                          env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        for port in ports:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError((tmp_path / f"gunicorn-{port}.log").read_text()) from None
                    time.sleep(0.2)
        yield ports
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def test_a_revoked_key_is_refused_by_every_process_within_a_tenth_of_a_second(two_servers, tea_shop):
    first, second = two_servers
    key, raw = api_key_create(partner=tea_shop, name="till", scopes=ALL_SCOPES)
    # Each process has looked the key up and keeps it.
    assert [call(port, raw)[0] for port in (first, second, first, second)] == [200, 200, 200, 200]

    api_key_revoke(api_key=key, reason="leaked")
    time.sleep(REQUEST_VERSIONS_MAX_AGE)
    answers = [call(port, raw) for port in (second, first)]
    assert [status for status, _ in answers] == [401, 401]
    assert answers[0][1]["error"]["message"] == "This API key has been revoked."


def test_a_changed_earning_rule_applies_in_every_process_a_tenth_of_a_second_later(two_servers, tea_shop):
    first, second = two_servers
    set_program(pending_days=0, expiry_policy="never", time_zone="UTC", accepted_currencies="EUR")
    rule = RuleFactory(name="1 per EUR")
    _, raw = api_key_create(partner=tea_shop, name="till", scopes=ALL_SCOPES)

    def order(port: int, order_id: str) -> int:
        status, body = call(port, raw, "POST", "/api/v1/orders/", {
            "order_id": order_id, "member": "cust-42", "placed_at": timezone.now().isoformat(), "currency": "EUR",
            "total": "10.00", "lines": [{"sku": "TEA-1", "name": "Tea", "category": "tea", "quantity": 1,
                                         "unit_price": "10.00"}]})
        assert status == 201, body
        return body["points"]

    call(first, raw, "POST", "/api/v1/members/", {"external_id": "cust-42"})
    assert [order(first, "1001"), order(second, "1002")] == [10, 10]

    rule.points_per_unit = Decimal("3")
    earning_rule_save(rule=rule)
    time.sleep(REQUEST_VERSIONS_MAX_AGE)
    assert [order(second, "1003"), order(first, "1004")] == [30, 30]


def test_a_referral_linked_in_one_process_converts_on_the_friends_order_in_another(two_servers, tea_shop):
    from accounts.models import Member
    from accounts.services import members_ensure_for_partner
    from feedback.models import Referral, ReferralStatus
    from feedback.services import referral_link

    first, second = two_servers
    set_program(pending_days=14, expiry_policy="never", time_zone="UTC", accepted_currencies="EUR")
    RuleFactory(name="1 per EUR")
    _, raw = api_key_create(partner=tea_shop, name="till", scopes=ALL_SCOPES)
    ids, _ = members_ensure_for_partner(partner=tea_shop, rows={"ada": {"email": "ada@example.com"},
                                                                "bob": {"email": "bob@example.com"}})

    def order(port: int, order_id: str, member: str) -> None:
        status, body = call(port, raw, "POST", "/api/v1/orders/", {
            "order_id": order_id, "member": member, "placed_at": timezone.now().isoformat(), "currency": "EUR",
            "total": "30.00", "lines": [{"sku": "TEA-1", "name": "Tea", "category": "tea", "quantity": 1,
                                         "unit_price": "30.00"}]})
        assert status == 201, body

    # Both processes read the open referrals (none) with an order of someone else's.
    order(first, "1001", "ada")
    order(second, "1002", "ada")
    ada, bob = Member.objects.get(pk=ids["ada"]), Member.objects.get(pk=ids["bob"])
    referral_link(friend=bob, code=ada.referral_code, source="code")  # here: a third process
    time.sleep(REQUEST_VERSIONS_MAX_AGE)
    order(second, "1003", "bob")
    assert Referral.objects.get(friend=bob).status == ReferralStatus.CONVERTED
