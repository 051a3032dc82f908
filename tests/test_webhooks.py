"""Webhooks against a real receiver on loopback: signed per Standard Webhooks (verified with the
``standardwebhooks`` library), retried with the same id, 410 disables, replay, ping, rotation,
and each partner told only about its own customers."""

import base64
import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from core.models import OutboxEvent
from core.tasks import purge_outbox, relay_outbox
from tests.factories import RuleFactory, customer, order_payload, same_store
from tests.receiver import Receiver
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import delivery_attempt

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    found = Receiver()
    yield found
    found.stop()


def subscribe(api, url, events=("*",)):
    response = api.post("/api/v1/webhooks/", {"url": url, "events": list(events)}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def deliver_all():
    """What the relay and the webhooks worker do after commit, here in the test's transaction."""
    relay_outbox()
    for delivery_id in WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).values_list("pk", flat=True):
        delivery_attempt(delivery_id=delivery_id)


def bodies(receiver):
    return [json.loads(body) for _, body in receiver.requests]


def test_a_delivery_is_signed_and_verifies_with_the_standard_library_and_a_tampered_one_does_not(api, receiver):
    endpoint = subscribe(api, receiver.url, ["member.created"])
    assert endpoint["secret"].startswith("whsec_") and endpoint["events"] == ["member.created"]
    api.post("/api/v1/members/", {"external_id": "cust-42", "email": "ada@example.com"}, format="json")
    deliver_all()
    [(headers, body)] = receiver.requests
    verified = Webhook(endpoint["secret"]).verify(body, headers)
    assert (verified["type"], verified["data"]["member"]) == ("member.created", "cust-42")
    assert headers["webhook-id"] == verified["id"] == OutboxEvent.objects.get(type="member.created").event_id
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(body.replace(b"cust-42", b"cust-43"), headers)


# Each snippet of docs/webhooks.md, then a few lines that read the cases (secret, headers, base64
# body) as JSON on stdin and print what the snippet said of each.
SNIPPETS = {
    "node": ("js", ["node"], """
const cases = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const out = {};
for (const [name, [secret, headers, body]] of Object.entries(cases))
  out[name] = verifyWebhook(secret, headers, Buffer.from(body, "base64"));
console.log(JSON.stringify(out));
"""),
    "php": ("php", ["php"], """
$out = [];
foreach (json_decode(stream_get_contents(STDIN), true) as $name => [$secret, $headers, $body]) {
    $out[$name] = verify_webhook($secret, $headers, base64_decode($body));
}
echo json_encode($out);
"""),
    "ruby": ("ruby", ["ruby"], """
require "json"
cases = JSON.parse($stdin.read)
out = cases.transform_values { |secret, headers, body| verify_webhook(secret, headers, Base64.decode64(body)) }
puts JSON.generate(out)
"""),
}


@pytest.mark.parametrize("language", sorted(SNIPPETS))
def test_each_snippet_in_the_docs_verifies_a_real_delivery_and_refuses_forgeries(api, receiver, tmp_path, language):
    fence, command, harness = SNIPPETS[language]
    if shutil.which(command[0]) is None:
        pytest.skip(f"needs {command[0]} (CI installs it)")
    docs = (Path(__file__).resolve().parent.parent / "docs" / "webhooks.md").read_text()
    snippet = docs.split(f"<!-- verify-{language} -->\n```{fence}\n", 1)[1].split("```", 1)[0]
    endpoint = subscribe(api, receiver.url, ["member.created"])
    api.post("/api/v1/members/", {"external_id": "cust-42", "email": "ada@example.com"}, format="json")
    deliver_all()
    [(headers, body)] = receiver.requests
    cases = {"real": (endpoint["secret"], headers, body),
             "tampered": (endpoint["secret"], headers, body.replace(b"cust-42", b"cust-43")),
             "other secret": (subscribe(api, receiver.url, ["ping"])["secret"], headers, body),
             "replayed an hour later": (endpoint["secret"], {**headers, "webhook-timestamp": str(
                 int(headers["webhook-timestamp"]) - 3600)}, body)}
    script = tmp_path / f"verify.{fence}"
    script.write_text(snippet + harness)
    given = {name: [secret, h, base64.b64encode(b).decode()] for name, (secret, h, b) in cases.items()}
    run = subprocess.run([*command, str(script)], input=json.dumps(given), capture_output=True, text=True,
                         timeout=30)
    assert run.returncode == 0, run.stderr + run.stdout
    assert json.loads(run.stdout) == {"real": True, "tampered": False, "other secret": False,
                                      "replayed an hour later": False}


def test_a_failed_delivery_is_retried_with_the_same_id_and_410_disables(api, tea_shop, receiver):
    subscribe(api, receiver.url)
    receiver.statuses = [500]
    customer(tea_shop, "cust-42")
    deliver_all()
    delivery = WebhookDelivery.objects.get(type="member.created")
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert timedelta(seconds=4) <= delivery.next_attempt_at - timezone.now() <= timedelta(seconds=6)
    assert delivery_attempt(delivery_id=delivery.pk) == "not due"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert delivery_attempt(delivery_id=delivery.pk) == "delivered"
    assert [h["webhook-id"] for h, _ in receiver.requests] == [delivery.event_id] * 2
    log = api.get(f"/api/v1/webhooks/{delivery.endpoint_id}/deliveries/").json()["results"]
    assert [(a["status_code"], a["type"]) for a in log] == [(200, "member.created"), (500, "member.created")]
    receiver.statuses = [410]
    customer(tea_shop, "cust-43")
    deliver_all()
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.active, endpoint.disabled_reason) == (False, "The endpoint answered 410 Gone.")


def test_each_partner_hears_only_of_its_own_customers_with_its_own_ids(api, coffee_api, tea_shop, coffee_bar,
                                                                      receiver):
    from tests.receiver import Receiver

    other = Receiver()
    try:
        subscribe(api, receiver.url, ["points.earned"])
        subscribe(coffee_api, other.url, ["points.earned"])
        RuleFactory(name="1 per EUR")
        customer(tea_shop, "ada-at-tea", email="ada@example.com")
        api.post("/api/v1/orders/", order_payload("T-1", "ada-at-tea", lines=(("TEA", 3, "10.00", "tea"),)),
                 format="json")
        deliver_all()
        assert [b["data"]["member"] for b in bodies(receiver)] == ["ada-at-tea"]
        assert other.requests == []  # the coffee bar does not know Ada
        same_store(tea_shop, coffee_bar)
        customer(coffee_bar, "ada-at-coffee", email="ada@example.com")
        api.post("/api/v1/orders/", order_payload("T-2", "ada-at-tea"), format="json")
        deliver_all()
        [told] = bodies(other)
        assert (told["data"]["member"], told["data"]["own"]) == ("ada-at-coffee", False)
        assert told["data"]["description"] == "Activity with another store"  # nothing of the tea shop's order
        mine = bodies(receiver)[-1]
        assert (mine["data"]["member"], mine["data"]["own"], mine["data"]["description"]) == (
            "ada-at-tea", True, "Order T-2")
    finally:
        other.stop()


def test_ping_rotation_and_replay(api, tea_shop, receiver):
    endpoint = subscribe(api, receiver.url)
    assert api.post(f"/api/v1/webhooks/{endpoint['id']}/test/", format="json").status_code == 202
    deliver_all()
    assert bodies(receiver)[-1]["type"] == "ping"
    new = api.post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret/", format="json").json()["secret"]
    customer(tea_shop, "cust-42")
    deliver_all()
    headers, body = receiver.requests[-1]
    assert len(headers["webhook-signature"].split(" ")) == 2  # old and new sign for 24 hours
    Webhook(new).verify(body, headers)
    Webhook(endpoint["secret"]).verify(body, headers)
    first_id = headers["webhook-id"]
    since = (timezone.now() - timedelta(minutes=5)).isoformat()
    replayed = api.post(f"/api/v1/webhooks/{endpoint['id']}/replay/", {"since": since}, format="json")
    assert replayed.status_code == 202 and replayed.json()["queued"] >= 1
    deliver_all()
    assert first_id in [h["webhook-id"] for h, _ in receiver.requests[-replayed.json()["queued"]:]]


def test_bad_input_and_other_partners_endpoints(api, coffee_api, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    plain = api.post("/api/v1/webhooks/", {"url": "http://shop.example.com/hooks", "events": ["*"]}, format="json")
    assert (plain.status_code, list(plain.json()["error"]["fields"])) == (400, ["url"])
    unknown = api.post("/api/v1/webhooks/", {"url": "https://shop.example.com/h", "events": ["points.stolen"]},
                       format="json")
    assert (unknown.status_code, list(unknown.json()["error"]["fields"])) == (400, ["events.0"])
    mine = subscribe(api, "https://shop.example.com/hooks")
    assert coffee_api.post(f"/api/v1/webhooks/{mine['id']}/rotate-secret/", format="json").status_code == 404
    assert coffee_api.get(f"/api/v1/webhooks/{mine['id']}/").status_code == 404
    assert coffee_api.get("/api/v1/webhooks/").json()["results"] == []


def test_a_name_that_resolves_to_a_private_address_is_refused_at_delivery(api, tea_shop, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    subscribe(api, "https://localhost:9/hooks")
    customer(tea_shop, "cust-42")
    deliver_all()
    delivery = WebhookDelivery.objects.get()
    attempt = delivery.tries.get()
    assert attempt.status_code is None and "private, loopback" in attempt.error


def test_secrets_are_stored_encrypted(api):
    created = subscribe(api, "https://shop.example.com/hooks")
    stored = WebhookEndpoint.objects.get().secret_encrypted
    assert created["secret"] not in stored and created["secret"][6:] not in stored


def test_staff_see_an_endpoints_health_and_enable_it_again(api, tea_shop, receiver, admin_client):
    endpoint = subscribe(api, receiver.url)
    receiver.statuses = [410]
    customer(tea_shop, "cust-42")
    deliver_all()
    page = admin_client.get("/admin/webhooks/webhookendpoint/")
    assert b"The endpoint answered 410 Gone." in page.content and b"0% of 1" in page.content
    response = admin_client.post("/admin/webhooks/webhookendpoint/", {
        "action": "enable", "_selected_action": [str(endpoint["id"])]})
    assert response.status_code == 302
    assert WebhookEndpoint.objects.get().active is True
    assert api.get(f"/api/v1/webhooks/{endpoint['id']}/").json()["disabled_reason"] == ""


def test_five_days_of_failure_disable_the_endpoint_and_tell_staff(api, tea_shop, receiver, staff, mailoutbox,
                                                                 django_capture_on_commit_callbacks):
    endpoint = subscribe(api, receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint["id"]).update(failing_since=timezone.now() - timedelta(days=5))
    receiver.statuses = [503]
    customer(tea_shop, "cust-42")
    with django_capture_on_commit_callbacks(execute=True):
        deliver_all()
    found = WebhookEndpoint.objects.get()
    assert (found.active, found.disabled_reason) == (False, "Every delivery failed for 5 days.")
    [mail] = [m for m in mailoutbox if "Webhook endpoint disabled" in m.subject]
    assert mail.to == ["staff@example.com"] and receiver.url in mail.body


def test_a_burst_starts_only_a_few_tries_per_endpoint_and_each_try_starts_the_next(
        api, tea_shop, receiver, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_ENDPOINT_CONCURRENCY = 2
    settings.CELERY_TASK_ALWAYS_EAGER = False  # with workers to protect (the callbacks are only counted here)
    subscribe(api, receiver.url, ["member.created"])
    from accounts.services import members_ensure_for_partner

    members_ensure_for_partner(partner=tea_shop, rows={f"c{n}": {} for n in range(10)})
    with django_capture_on_commit_callbacks() as queued:
        relay_outbox()
    assert WebhookDelivery.objects.count() == 10
    assert len(queued) == 2  # two chains for this endpoint, not ten tries at once
    first = WebhookDelivery.objects.order_by("id").first()
    with django_capture_on_commit_callbacks() as after_one:
        delivery_attempt(delivery_id=first.pk)
    assert len(after_one) == 1  # ...and the try, once done, starts the endpoint's next one


def test_a_replay_sends_to_its_own_endpoint_only(api, tea_shop, receiver):
    first = subscribe(api, receiver.url)
    customer(tea_shop, "cust-42")
    deliver_all()
    later = subscribe(api, receiver.url + "/later")  # made after the event: it never asked for it
    since = (timezone.now() - timedelta(minutes=5)).isoformat()
    api.post(f"/api/v1/webhooks/{first['id']}/replay/", {"since": since}, format="json")
    assert not WebhookDelivery.objects.filter(endpoint_id=later["id"]).exists()
    assert WebhookDelivery.objects.filter(endpoint_id=first["id"], status=DeliveryStatus.PENDING).count() == 1


def test_the_sweep_queues_a_few_due_tries_per_endpoint(api, tea_shop, receiver, settings, eager_tasks):
    from accounts.services import members_ensure_for_partner
    from webhooks.services import deliveries_due

    settings.OUTBOX_RELAY_ON_COMMIT = False
    subscribe(api, receiver.url)
    subscribe(api, receiver.url + "/two")
    members_ensure_for_partner(partner=tea_shop, rows={f"c{n}": {} for n in range(6)})
    relay_outbox()
    assert WebhookDelivery.objects.count() == 12
    assert deliveries_due(per_endpoint=2) == 4
    assert len(receiver.requests) == 4
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).values("endpoint_id").distinct().count() == 2


def test_every_try_sends_the_body_of_the_first_and_an_untried_delivery_outlives_the_retention(api, tea_shop, receiver,
                                                                                       staff):
    endpoint = subscribe(api, receiver.url, ["member.created", "member.updated"])
    receiver.statuses = [500]
    customer(tea_shop, "cust-42", email="ada@example.com")
    deliver_all()
    delivery = WebhookDelivery.objects.get(type="member.created")
    assert delivery.payload["data"]["member"] == "cust-42"  # kept as sent
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    deliver_all()
    first, again = (json.loads(body) for _, body in receiver.requests)
    assert first == again and again["id"] == delivery.event_id

    # A delivery never tried while its endpoint was switched off for longer than the outbox keeps
    # events: the purge keeps its event, and once the endpoint is on again it is delivered.
    customer(tea_shop, "cust-42", email="ada@example.com", first_name="Ada")
    relay_outbox()  # paired with the endpoint; the endpoint is switched off before its first try
    api.patch(f"/api/v1/webhooks/{endpoint['id']}/", {"active": False}, format="json")
    long_ago = timezone.now() - timedelta(days=40)
    OutboxEvent.objects.update(created_at=long_ago)
    assert purge_outbox() == 1  # member.created, already delivered: forgotten; member.updated: kept
    api.patch(f"/api/v1/webhooks/{endpoint['id']}/", {"active": True}, format="json")
    WebhookDelivery.objects.filter(type="member.updated").update(next_attempt_at=timezone.now())
    deliver_all()
    late = WebhookDelivery.objects.get(type="member.updated")
    assert late.status == DeliveryStatus.SUCCEEDED and json.loads(receiver.requests[-1][1])["type"] == "member.updated"
    assert purge_outbox() == 1  # now it is not needed any more


def test_an_erased_member_is_told_to_each_store_that_knew_them_with_its_own_id(api, coffee_api, tea_shop, coffee_bar,
                                                                               receiver):
    other = Receiver()
    try:
        subscribe(api, receiver.url, ["member.erased"])
        subscribe(coffee_api, other.url, ["member.erased"])
        customer(tea_shop, "ada-at-tea", email="ada@example.com")
        customer(coffee_bar, "bob-at-coffee", email="bob@example.com")
        assert api.post("/api/v1/members/ada-at-tea/erase/", {"reason": "asked by email"},
                        format="json").status_code == 200
        deliver_all()
        [told] = bodies(receiver)
        assert (told["type"], told["data"]) == ("member.erased", {"member": "ada-at-tea"})
        assert other.requests == []  # the coffee bar never knew Ada
    finally:
        other.stop()
