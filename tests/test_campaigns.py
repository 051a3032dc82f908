"""Campaigns: an audience evaluated in the database (members who refused offers never in it), a
random holdout that gets nothing, offers paid through the engine once per member and occurrence
(a replay, a second run, two runs at once on PostgreSQL), the message through the outbox or handed
to the store, and a report whose figures come from what members did after they entered."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Member
from campaigns import audience, selectors, services
from campaigns.models import Campaign, CampaignEntry, CampaignStatus, Group, OfferKind, Trigger
from core.errors import Invalid
from core.models import OutboxEvent
from rewards.models import Coupon, LedgerEntry
from rewards.selectors import ledger_discrepancies
from rewards.services import points_adjust
from tests.concurrency import run_concurrently
from tests.conftest import make_portal_member
from tests.factories import RewardFactory, RuleFactory, customer, place_order, set_program

pytestmark = pytest.mark.django_db


def shopper(n: int, **consents):
    return make_portal_member(f"s{n}@example.com", first_name=f"Sam{n}", consents={"offers": "email", **consents})


def launch(name="Win back", **fields) -> Campaign:
    fields.setdefault("starts_at", timezone.now() - timedelta(days=1))
    fields.setdefault("title", "{first_name}, {offer} for you")
    fields.setdefault("body", "You have {points} points at {program}.")
    campaign = services.campaign_save(campaign=Campaign(name=name, **fields), actor_user=None)
    return services.campaign_set_status(campaign=campaign, status=CampaignStatus.RUNNING, actor_user=None)


def test_the_audience_is_one_query_and_never_holds_members_who_refused_offers(django_assert_num_queries):
    rich, poor = shopper(1), shopper(2)
    quiet = make_portal_member("quiet@example.com", consents={"offers": "none"})
    for member in (rich, quiet):
        points_adjust(member=member, points=800, reason="test")
    spec = {"match": "all", "conditions": [{"field": "points_available", "op": "gte", "value": 500}]}
    with django_assert_num_queries(1):
        found = list(audience.members(spec, now=timezone.now()).values_list("pk", flat=True))
    assert found == [rich.pk]
    anyone = {"match": "any", "conditions": [{"field": "points_available", "op": "gte", "value": 500},
                                             {"field": "points_available", "op": "lte", "value": 0}]}
    assert set(audience.members(anyone, now=timezone.now()).values_list("pk", flat=True)) == {rich.pk, poor.pk}
    with pytest.raises(Invalid) as wrong:
        audience.check({"conditions": [{"field": "points_available", "op": "gte", "value": 1},
                                       {"field": "p_alive", "op": "lte", "value": 1.5}]})
    assert wrong.value.fields == {"audience.conditions[1]": ["P(alive): between 0 and 1."]}


def test_treated_members_get_the_offer_and_the_message_once_and_the_holdout_nothing(mailoutbox):
    members = [shopper(n) for n in range(40)]
    campaign = launch(offer=OfferKind.POINTS, offer_points=500, holdout_percent=25)
    result = services.campaign_run(campaign=campaign)
    assert result.entered == 40 and result.treated + result.held_out == 40
    held = set(CampaignEntry.objects.filter(group=Group.HOLDOUT).values_list("member_id", flat=True))
    assert len(held) == result.held_out and 4 <= len(held) <= 18  # about a quarter, by a hash
    for member in members:
        member.refresh_from_db()
        assert member.points_available == (0 if member.pk in held else 500)
    assert sorted(m.to[0] for m in mailoutbox) == sorted(m.email for m in members if m.pk not in held)
    first = next(m for m in mailoutbox)
    assert first.subject.endswith(", 500 bonus points for you") and "You have 500 points at Loyalty Loop." in first.body
    # Run again, or replayed: nobody enters twice, nobody is paid twice.
    assert services.campaign_run(campaign=campaign).entered == 0
    assert sum(Member.objects.values_list("points_available", flat=True)) == 500 * result.treated
    assert list(ledger_discrepancies()) == []
    # The same members are held out by the next campaign's hash only by chance, not by rule.
    assert services.in_holdout(campaign.pk, members[0].pk, 25) == (members[0].pk in held)


def test_a_weekly_campaign_enters_members_again_each_week_and_a_one_off_once(mailoutbox):
    shopper(1)
    weekly = launch(trigger=Trigger.WEEKLY, holdout_percent=0)
    once = launch(name="Once", holdout_percent=0)
    now = timezone.now()
    for campaign in (weekly, once):
        assert services.campaign_run(campaign=campaign, now=now).entered == 1
    weekly.refresh_from_db()
    once.refresh_from_db()
    assert services.campaign_run(campaign=weekly, now=now + timedelta(days=7)).entered == 1
    assert services.campaign_run(campaign=once, now=now + timedelta(days=7)).occurrence is None
    services.campaign_set_status(campaign=weekly, status=CampaignStatus.PAUSED, actor_user=None)
    weekly.refresh_from_db()
    assert services.campaign_run(campaign=weekly, now=now + timedelta(days=14)).entered == 0  # paused


def test_a_coupon_offer_gives_each_treated_member_a_coupon_the_campaign_pays_for():
    members = [shopper(n) for n in range(6)]
    reward = RewardFactory(name="Tin of tea", points_cost=300)
    campaign = launch(offer=OfferKind.COUPON, offer_reward=reward, holdout_percent=0)
    services.campaign_run(campaign=campaign)
    assert Coupon.objects.filter(reward=reward).count() == 6
    for member in members:
        member.refresh_from_db()
        assert member.points_available == 0  # given and spent on the coupon: the books say so
    assert LedgerEntry.objects.filter(kind="redeem").count() == 6 and list(ledger_discrepancies()) == []


def test_a_store_that_sends_its_own_mail_gets_a_campaign_message_event_instead(mailoutbox):
    member = shopper(1)
    campaign = launch(holdout_percent=0, delivery="store", title="A note for {first_name}")
    services.campaign_run(campaign=campaign)
    assert list(mailoutbox) == []
    [event] = OutboxEvent.objects.filter(type="campaign.message")
    assert event.member_id == member.pk and event.data["campaign"] == "Win back"
    assert event.data["subject"] == "A note for Sam1"
    assert event.data["text"].startswith("You have 0 points at Loyalty Loop.\nhttp")


def test_the_report_measures_what_members_did_after_they_entered(tea_shop):
    set_program(pending_days=0, expiry_policy="never", point_value=Decimal("0.01"))
    RuleFactory(name="1 per EUR")
    members = []
    for n in range(30):
        member = shopper(n)
        customer(tea_shop, f"c{n}", email=member.email)
        members.append(member)
    campaign = launch(offer=OfferKind.POINTS, offer_points=200, holdout_percent=30)
    services.campaign_run(campaign=campaign, now=timezone.now() - timedelta(hours=1))  # they entered an hour ago
    entries = dict(CampaignEntry.objects.values_list("member_id", "group"))
    treated = [m for m in members if entries[m.pk] == Group.TREATED]
    holdout = [m for m in members if entries[m.pk] == Group.HOLDOUT]
    assert treated and holdout
    # Half the treated order 40.00 in the window; one held-out member orders 40.00.
    buyers = treated[: len(treated) // 2]
    for member in buyers + holdout[:1]:
        n = members.index(member)
        place_order(tea_shop, f"w{n}", f"c{n}", lines=(("TEA", 1, "40.00", "tea"),))
    report = selectors.campaign_report(campaign=campaign)
    assert (report.treated.members, report.treated.converted) == (len(treated), len(buyers))
    assert (report.holdout.members, report.holdout.converted) == (len(holdout), 1)
    assert report.treated.revenue == Decimal("40.00") * len(buyers)
    assert report.conversion.estimate == pytest.approx(len(buyers) / len(treated) - 1 / len(holdout))
    assert report.cost == Decimal("2.00") * len(treated)  # 200 points at 0.01 each
    assert report.net == (Decimal(str(report.revenue_per_member.estimate)) * len(treated)).quantize(
        Decimal("0.01")) - report.cost
    assert report.conversion.low < report.conversion.estimate < report.conversion.high
    assert report.verdict.startswith("too few members to measure yet")  # a holdout of a handful
    refund_one = buyers[0]  # ...and an order refunded in full does not count
    place_order(tea_shop, "refunded", f"c{members.index(refund_one)}", lines=(("TEA", 1, "99.00", "tea"),))
    from tests.factories import refund

    refund(tea_shop, "refunded", refund_id="r1")
    assert selectors.campaign_report(campaign=campaign).treated.revenue == Decimal("40.00") * len(buyers)
    later = selectors.campaign_report(campaign=campaign, now=timezone.now() + timedelta(days=31))
    assert later.complete and not report.complete


def test_staff_build_launch_run_and_read_a_campaign_in_the_admin(staff, mailoutbox):
    client = Client()
    client.force_login(staff)
    rich = shopper(1)
    points_adjust(member=rich, points=900, reason="test")
    shopper(2)
    form = {"name": "Near a reward", "trigger": "once", "starts_at": f"{timezone.now().date().isoformat()}T00:00",
            "offer": "points", "offer_points": "100", "title": "Hi {first_name}", "body": "{offer}",
            "delivery": "send", "holdout_percent": "0", "report_days": "30", "match": "all", "points_min": "800"}
    bad = client.post("/admin/campaigns/campaign/add/", {**form, "title": "Hi {frist_name}"})
    refused = bad.content.decode()
    assert "Unknown placeholder {frist_name}" in refused and 'value="Near a reward"' in refused
    response = client.post("/admin/campaigns/campaign/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    campaign = Campaign.objects.get()
    assert campaign.audience == {"match": "all", "conditions": [
        {"field": "points_available", "op": "gte", "value": "800"}]}
    page = client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "<strong>1 member</strong>" in page and "s1@example.com" in page
    client.post(f"/admin/campaigns/campaign/{campaign.pk}/status/running/")
    client.post(f"/admin/campaigns/campaign/{campaign.pk}/run/")
    assert CampaignEntry.objects.filter(campaign=campaign).count() == 1
    assert [m.subject for m in mailoutbox] == ["Hi Sam1"]
    assert "1 sent, 0 held out" in client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    report = client.get(f"/admin/campaigns/campaign/{campaign.pk}/report/").content.decode()
    assert "Too few members to measure yet" in report and "Cost of the offers" in report
    client.post(f"/admin/campaigns/campaign/{campaign.pk}/test/")
    assert mailoutbox[-1].to == [staff.email] and mailoutbox[-1].subject == "Hi Ada"


def test_a_member_list_with_unknown_lines_is_refused_naming_them(staff):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = Client()
    client.force_login(staff)
    known = shopper(1)
    listed = SimpleUploadedFile("list.csv", f"email\n{known.email}\nnobody@example.com\n\n{known.pk}\n".encode())
    response = client.post("/admin/campaigns/campaign/add/", {
        "name": "Listed", "trigger": "once", "starts_at": "2026-01-01T00:00", "offer": "none",
        "title": "Hello", "delivery": "send", "holdout_percent": "10", "report_days": "30", "match": "all",
        "member_list": listed})
    assert "No member for line 3 (nobody@example.com); the 2 others are fine." in response.content.decode()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_pay_each_member_once():
    members = [shopper(n) for n in range(60)]
    campaign = launch(offer=OfferKind.POINTS, offer_points=100, holdout_percent=10)
    results = run_concurrently(lambda i: services.campaign_run(campaign=Campaign.objects.get(pk=campaign.pk)), 4)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.entered for r in results) == 60
    treated = CampaignEntry.objects.filter(group=Group.TREATED).count()
    assert sum(Member.objects.filter(pk__in=[m.pk for m in members]).values_list("points_available", flat=True)) \
        == 100 * treated
    assert list(ledger_discrepancies()) == []


def test_a_multiplier_offer_doubles_the_points_of_the_members_sent_to_on_the_chosen_lines_in_its_days(tea_shop):
    set_program(pending_days=0, expiry_policy="never", point_value=Decimal("0.01"))
    RuleFactory(name="1 per EUR")
    members = []
    for n in range(12):
        member = shopper(n)
        customer(tea_shop, f"c{n}", email=member.email)
        members.append(member)
    start = timezone.now() - timedelta(days=4)  # a weekend that is over: orders cannot be placed ahead
    campaign = launch(name="Double tea weekend", offer=OfferKind.MULTIPLIER, offer_multiplier=Decimal("2"),
                      offer_categories="tea", offer_days=3, holdout_percent=50, starts_at=start,
                      title="{offer}, {first_name}")
    services.campaign_run(campaign=campaign, now=start + timedelta(minutes=1))
    groups = dict(CampaignEntry.objects.values_list("member_id", "group"))
    sent = next(m for m in members if groups[m.pk] == Group.TREATED)
    held = next(m for m in members if groups[m.pk] == Group.HOLDOUT)
    lines = (("TEA-1", 1, "20.00", "tea"), ("MUG-1", 1, "10.00", "teaware"))
    earned = {}
    for member in (sent, held):
        n = members.index(member)
        earned[member] = place_order(tea_shop, f"x{n}", f"c{n}", lines=lines,
                                     placed_at=start + timedelta(hours=2)).award.points
    assert earned == {sent: 20 * 2 + 10, held: 30}  # tea doubled for the member sent to, not the mug
    n = members.index(sent)
    late = place_order(tea_shop, f"late{n}", f"c{n}", lines=lines)
    assert late.award.points == 30  # after its three days
    report = selectors.campaign_report(campaign=campaign)
    assert report.cost == Decimal("0.20")  # the 20 extra points it gave, at 0.01
    campaign.refresh_from_db()
    assert "2x points on tea for 3 days" in services._offer_words(campaign)


def test_anniversary_referral_and_next_reward_conditions_and_placeholders(mailoutbox):
    from feedback.models import Referral

    now = timezone.now()
    veteran, friend, loner = shopper(1), shopper(2), shopper(3)
    joined = now.replace(year=now.year - 2, day=1)
    Member.objects.filter(pk=veteran.pk).update(created_at=joined)
    Referral.objects.create(referrer=veteran, friend=friend, status="rewarded")
    found = lambda spec: set(audience.members(spec, now=now).values_list("pk", flat=True))  # noqa: E731
    assert found({"conditions": [{"field": "joined_this_month", "value": True}]}) == {veteran.pk}
    assert found({"conditions": [{"field": "referral", "value": ["referred_friends"]}]}) == {veteran.pk}
    assert found({"conditions": [{"field": "referral", "value": ["was_referred"]}]}) == {friend.pk}
    assert found({"conditions": [{"field": "referral", "value": ["not_referred"]}]}) == {veteran.pk, loner.pk}
    RewardFactory(name="Tin of tea", points_cost=300)
    RewardFactory(name="Teapot", points_cost=900)
    points_adjust(member=veteran, points=400, reason="test")
    campaign = launch(name="Anniversary", holdout_percent=0, title="Happy anniversary, {first_name}",
                      body="Next up: {next_reward}.",
                      audience={"conditions": [{"field": "joined_this_month", "value": True}]})
    services.campaign_run(campaign=campaign)
    [mail] = list(mailoutbox)
    assert mail.subject == "Happy anniversary, Sam1" and "Next up: Teapot (900 points)." in mail.body


def test_what_a_running_campaign_cannot_become_is_refused_by_name(tea_shop):
    from rewards.models import RuleKind

    shopper(1)
    with pytest.raises(Invalid) as weekly:
        launch(offer=OfferKind.MULTIPLIER, offer_multiplier=Decimal("2"), offer_days=3, trigger=Trigger.WEEKLY)
    assert "one-off campaign" in weekly.value.fields["trigger"][0]
    RuleFactory(name="Tea double", kind=RuleKind.MULTIPLIER, points_per_unit=None, multiplier=Decimal("2"),
                stacks=False)
    with pytest.raises(Invalid) as clash:  # a rule it would contradict: named, not a crash
        launch(offer=OfferKind.MULTIPLIER, offer_multiplier=Decimal("3"), offer_days=3)
    assert "same priority" in clash.value.fields["offer_multiplier"][0]
    campaign = launch(holdout_percent=0)
    services.campaign_run(campaign=campaign)
    campaign.trigger = Trigger.WEEKLY  # another occurrence key: everyone would enter, and be paid, again
    with pytest.raises(Invalid) as changed:
        services.campaign_save(campaign=campaign, actor_user=None)
    assert "Members have entered" in changed.value.fields["trigger"][0]


def test_a_campaign_with_messages_off_leaves_only_the_portal_note(mailoutbox):
    member = shopper(1)
    services.campaign_run(campaign=launch(holdout_percent=0, delivery="off", title="Just for you"))
    assert list(mailoutbox) == [] and member.notifications.get().title == "Just for you"


def test_a_weekly_campaigns_report_counts_each_member_once():
    members = [shopper(n) for n in range(3)]
    campaign = launch(trigger=Trigger.WEEKLY, holdout_percent=0)
    now = timezone.now()
    services.campaign_run(campaign=campaign, now=now)
    campaign.refresh_from_db()
    services.campaign_run(campaign=campaign, now=now + timedelta(days=7))
    assert CampaignEntry.objects.count() == 6
    assert selectors.campaign_report(campaign=campaign).treated.members == len(members)


def test_a_spreadsheets_list_with_a_byte_order_mark_and_semicolons_is_read(staff):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from feedback.models import Referral

    client = Client()
    client.force_login(staff)
    one, two = shopper(1), shopper(2)
    listed = SimpleUploadedFile("list.csv", f"\ufeffemail;name\n{one.email};One\n{two.pk};Two\n".encode())
    response = client.post("/admin/campaigns/campaign/add/", {
        "name": "Listed", "trigger": "once", "starts_at": "2026-01-01T00:00", "offer": "none",
        "title": "Hello", "delivery": "send", "holdout_percent": "10", "report_days": "30", "match": "all",
        "member_list": listed})
    assert response.status_code == 302
    assert Campaign.objects.get().audience["conditions"] == [{"field": "members", "op": "in",
                                                              "value": sorted([one.pk, two.pk])}]
    Referral.objects.create(referrer=two, friend=one, status="void")  # a void referral is no referral
    spec = {"conditions": [{"field": "referral", "value": ["not_referred"]}]}
    assert set(audience.members(spec, now=timezone.now()).values_list("pk", flat=True)) == {one.pk, two.pk}
