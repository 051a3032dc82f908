"""Every API key is rate-limited, per key, shared by all web processes through the cache."""

import io

import pytest
from django.core.management import call_command

from accounts.models import ApiKey, AuditLog
from accounts.services import hash_api_key
from core.rates import Rate
from tests.conftest import partner_client
from tests.factories import order_payload

pytestmark = pytest.mark.django_db


def key_of(client) -> ApiKey:
    return ApiKey.objects.get(key_hash=hash_api_key(client.raw_key))


def test_a_key_over_its_own_limit_gets_429_with_retry_after_and_the_counts(api):
    key = key_of(api)
    key.rate_limit = "3/min"
    key.save()
    answers = [api.get("/api/v1/rewards/") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a["RateLimit-Limit"] for a in answers] == ["3"] * 4
    assert [a["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    refused = answers[-1]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert 1 <= int(refused["RateLimit-Reset"]) <= 60
    assert refused.json()["error"]["code"] == "rate_limited"


def test_the_default_limit_comes_from_api_rate_limit_and_is_per_key(tea_shop, settings):
    settings.API_RATE_LIMIT = Rate(2, 60)
    first, second = partner_client(tea_shop), partner_client(tea_shop)
    assert [first.get("/api/v1/rewards/").status_code for _ in range(3)] == [200, 200, 429]
    assert second.get("/api/v1/rewards/").status_code == 200
    assert second.get("/api/v1/rewards/")["RateLimit-Limit"] == "2"


def test_a_batch_of_many_orders_counts_as_one_call(api, tea_shop, settings):
    from tests.factories import customer

    settings.API_RATE_LIMIT = Rate(2, 60)
    customer(tea_shop, "cust-42")
    batch = {"orders": [order_payload(str(n), "cust-42") for n in range(50)]}
    response = api.post("/api/v1/orders/batch/", batch, format="json")
    assert (response.status_code, response.json()["accepted"]) == (200, 50)
    assert response["RateLimit-Remaining"] == "1"


def test_errors_are_counted_and_carry_the_headers(api, settings):
    settings.API_RATE_LIMIT = Rate(5, 60)
    response = api.get("/api/v1/members/nobody/")
    assert (response.status_code, response["RateLimit-Remaining"]) == (404, "4")


def test_partner_create_sets_a_keys_own_limit_and_refuses_a_bad_one(db):
    out = io.StringIO()
    call_command("partner_create", "Till", "--scopes", "members:read", "--rate-limit", "600/minute", stdout=out)
    assert ApiKey.objects.get(partner__name="Till").rate_limit == "600/min"
    assert "rate limit 600/min" in out.getvalue()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="is not a rate"):
        call_command("partner_create", "Till 2", "--scopes", "members:read", "--rate-limit", "lots", stdout=out)


def test_staff_change_a_keys_limit_in_the_admin_and_it_is_audited(api, admin_client):
    key = key_of(api)
    response = admin_client.post(f"/admin/accounts/apikey/{key.pk}/change/", {"rate_limit": "10/sec"})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.rate_limit == "10/sec"
    audit = AuditLog.objects.get(action="api_key.rate_limit_changed")
    assert (audit.before, audit.after) == ({"rate_limit": "default"}, {"rate_limit": "10/sec"})
    bad = admin_client.post(f"/admin/accounts/apikey/{key.pk}/change/", {"rate_limit": "often"})
    assert bad.status_code == 200
    assert b"Write it like 600/min" in bad.content


def test_a_malformed_api_rate_limit_stops_the_process(tmp_path):
    import subprocess
    import sys

    from django.conf import settings

    result = subprocess.run([sys.executable, "manage.py", "check"], env={"API_RATE_LIMIT": "fast", "PATH": "/usr/bin"},
                            capture_output=True, text=True, cwd=settings.BASE_DIR, timeout=60)
    assert result.returncode != 0
    assert "API_RATE_LIMIT" in result.stderr


def test_calls_counted_at_once_from_many_threads_each_get_their_own_count_and_a_window_ends():
    """The cache's count is atomic (Redis on the PostgreSQL pass, one connection per thread): 8
    threads counting 50 calls each see every count from 1 to 400 exactly once, so a limit of N lets
    exactly N through; the counter starts again once its window's time is up."""
    import time
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from django.core.cache import cache

    name = f"test-count:{uuid.uuid4().hex}"
    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(lambda _: [cache.count(name, timeout=1) for _ in range(50)], range(8)))
    assert sorted(n for thread in counts for n in thread) == list(range(1, 401))
    time.sleep(1.3)
    assert cache.count(name, timeout=1) == 1
