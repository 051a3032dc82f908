"""The parts an operator touches: health check, the command line, production settings, email."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import ApiKey, AuditLog, Partner
from accounts.services import hash_api_key
from loyalty_site import views

ROOT = Path(__file__).resolve().parent.parent


def _run(args, **env):
    full_env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"} | env
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120)


@pytest.mark.django_db
def test_healthz_is_200_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_healthz_is_503_when_the_configured_broker_does_not_answer(client, monkeypatch):
    monkeypatch.setattr(views, "_broker_client", None)
    with override_settings(CELERY_TASK_ALWAYS_EAGER=False, CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("error")
    assert response.json()["checks"]["database"] == "ok"


def test_healthz_is_503_when_the_database_does_not_answer():
    # A real process configured with a database nobody listens on.
    code = (
        "import django; django.setup();"
        "from django.test import Client;"
        "r = Client(HTTP_HOST='localhost').get('/healthz'); print(r.status_code, r.json()['checks']['database'])"
    )
    result = _run(["-c", code], DJANGO_SETTINGS_MODULE="loyalty_site.settings",
                  DATABASE_URL="postgres://postgres@127.0.0.1:1/nowhere", CELERY_BROKER_URL="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["503", "error:"]


@pytest.mark.django_db
def test_partner_create_prints_a_working_key_on_the_last_line_only(capsys):
    call_command("partner_create", "Tea Shop", "--scopes", "members:read,members:write")
    out = capsys.readouterr().out.strip().splitlines()
    raw = out[-1]
    assert raw.startswith("ll_") and len(raw) > 40
    assert all(raw not in line for line in out[:-1])
    key = ApiKey.objects.get(partner__name="Tea Shop")
    assert key.key_hash == hash_api_key(raw)
    assert key.scopes == ["members:read", "members:write"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.post("/api/v1/members/", {"external_id": "c1"}, format="json").status_code == 201


@pytest.mark.django_db
def test_partner_create_refuses_unknown_scopes_and_creates_nothing():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Unknown scopes: members:delete"):
        call_command("partner_create", "Tea Shop", "--scopes", "members:delete")
    assert not Partner.objects.exists()


def test_production_settings_pass_the_deploy_check():
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="0", SECRET_KEY="x7#Kq9!mZ2@vR5$tW8^bN3&hJ6*cF1(pL4)sD0-gY_aE+uI=oT" * 2,
        ALLOWED_HOSTS="loyalty.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_settings_fail_loudly_without_a_secret():
    result = _run(["manage.py", "check"], DEBUG="0", SECRET_KEY="", ALLOWED_HOSTS="x.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_a_malformed_setting_stops_the_process():
    result = _run(["manage.py", "check"], DEBUG="ture")
    assert result.returncode != 0
    assert "DEBUG='ture' is not a boolean" in result.stderr


@pytest.mark.django_db
def test_admin_shows_a_new_api_key_once_and_stores_only_its_hash(client, staff, tea_shop):
    client.force_login(staff)
    response = client.post("/admin/accounts/apikey/add/", {
        "partner": tea_shop.pk, "name": "POS", "scopes": ["members:read", "rewards:redeem"],
    })
    assert response.status_code == 200
    raw = response.context["raw_key"]
    assert raw.encode() in response.content
    key = ApiKey.objects.get(name="POS")
    assert key.key_hash == hash_api_key(raw)
    assert key.scopes == ["members:read", "rewards:redeem"]
    # The change page never shows it again.
    page = client.get(f"/admin/accounts/apikey/{key.pk}/change/")
    assert raw.encode() not in page.content
    assert AuditLog.objects.filter(action="api_key.created", actor_user=staff).exists()


@pytest.mark.django_db
def test_admin_revokes_keys_with_an_audit_row(client, staff, api):
    client.force_login(staff)
    key = ApiKey.objects.get(partner=api.partner)
    client.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api.get("/api/v1/members/x/").status_code == 401
    assert AuditLog.objects.filter(action="api_key.revoked", actor_user=staff).exists()


@pytest.mark.django_db
def test_admin_finds_members_by_email_name_or_external_id(client, staff, api, alice):
    payload = {"external_id": "POS-998", "email": "zed@example.com", "first_name": "Zed"}
    api.post("/api/v1/members/", payload, format="json")
    client.force_login(staff)
    for term in ("zed@example", "Zed", "POS-998"):
        page = client.get("/admin/accounts/member/", {"q": term})
        assert page.status_code == 200
        assert list(page.context["cl"].result_list.values_list("email", flat=True)) == ["zed@example.com"]
    page = client.get("/admin/")
    assert b"Loyalty Loop administration" in page.content


@pytest.mark.django_db
def test_seed_demo_is_idempotent():
    from accounts.models import Member, User

    call_command("seed_demo", stdout=StringIO())
    counts = (Member.objects.count(), User.objects.count(), Partner.objects.count())
    printed = StringIO()
    call_command("seed_demo", url="http://127.0.0.1:8080", stdout=printed)  # make run PORT=8080
    assert (Member.objects.count(), User.objects.count(), Partner.objects.count()) == counts
    assert "(http://127.0.0.1:8080/admin/)" in printed.getvalue() and ":8000" not in printed.getvalue()
    assert counts[0] >= 300
    demo = Member.objects.get(email="member@example.com")
    assert demo.user is not None and demo.external_ids.count() == 1


@pytest.mark.django_db
def test_the_demo_history_hangs_together():
    """What a visitor of the demo saw: the member who joined over a year ago had no "Old friend"
    badge, and the insights said nobody redeemed (the redemptions came after the snapshot)."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import Member
    from insights.models import Snapshot
    from rewards.models import MemberBadge

    call_command("seed_demo", stdout=StringIO())
    demo = Member.objects.get(email="member@example.com")
    assert demo.created_at < timezone.now() - timedelta(days=366)
    held = set(MemberBadge.objects.filter(member=demo).values_list("level__badge__name", "level__name"))
    assert ("Old friend", "1 year") in held
    month = Snapshot.objects.latest().overview["30"]["current"]
    assert month["points_redeemed"] > 0 and month["redeemed_share"] > 0


@pytest.mark.django_db
def test_the_demo_campaigns_have_reports_with_numbers():
    from campaigns.models import Campaign
    from campaigns.selectors import campaign_report

    call_command("seed_demo", stdout=StringIO())
    campaigns = list(Campaign.objects.order_by("pk"))
    assert [c.offer for c in campaigns] == ["points", "coupon", "multiplier"]
    for campaign in campaigns:
        report = campaign_report(campaign=campaign)
        assert report.treated.members > 0 and report.treated.converted > 0, campaign  # they ordered after entering
        assert report.cost > 0, campaign  # the points, the coupons, what the multiplier added
    # The birthday campaign's audience is one month's birthdays (a handful); the others hold some out.
    for campaign in (campaigns[0], campaigns[2]):
        assert campaign_report(campaign=campaign).holdout.members > 0, campaign


@pytest.mark.django_db(transaction=True)
def test_seed_demo_runs_its_tasks_inline_whatever_the_broker(own_queues):
    """The demo is whole when the command returns, and no worker checks members' progress beside
    the seed's transactions (one did, and deadlocked with it: CI on PostgreSQL). On SQLite tasks
    are inline anyway; on PostgreSQL with a broker this counts what the seed left in the queues."""
    from loyalty_site.celery import tasks_waiting
    from rewards.reactions import progress_checks

    call_command("seed_demo", stdout=StringIO())
    progress_checks.flush()  # what the process holds for a second, as it does on exit
    assert tasks_waiting(own_queues.values()) == 0
