"""Demo surveys and referrals for ``seed_demo``: a live NPS survey with eight weeks of answers (and
detractors waiting for a follow-up), a post-purchase delivery survey, and referrals in every state."""

import random
from datetime import timedelta

from django.utils import timezone

from accounts.models import Member
from accounts.services import member_upsert_for_partner
from feedback import services
from feedback.models import Survey, SurveyQuestion
from rewards.payloads import parse_order, parse_refund
from rewards.services import order_record, order_refund

COMMENTS = {
    "low": ["Delivery took almost two weeks.", "The tea arrived stale.", "Too expensive for what it is.",
            "Customer service never answered my email."],
    "mid": ["Good, but shipping costs are high.", "Nice selection; the website is slow."],
    "high": ["Best sencha I have had outside Japan!", "Always fast and friendly.", "Love the tasting kits."],
}


def seed(*, rng: random.Random, stdout, context: dict) -> dict:
    if Survey.objects.exists():
        return {}
    now = timezone.now()
    _seed_surveys(rng=rng, context=context, now=now)
    _seed_referrals(rng=rng, context=context, now=now)
    return {}


def _seed_surveys(*, rng, context, now) -> None:
    from accounts.models import ExternalId

    survey = Survey.objects.create(name="How are we doing?", intro="Two minutes, a few questions. Thank you!",
                                   opens_at=now - timedelta(days=60), repeat_every_days=None)
    nps = SurveyQuestion.objects.create(survey=survey, position=1, kind="nps",
                                        text="How likely are you to recommend us to a friend?")
    SurveyQuestion.objects.create(survey=survey, position=2, kind="text", text="What could we do better?",
                                  show_if_question=nps, show_if_min=0, show_if_max=6)
    SurveyQuestion.objects.create(survey=survey, position=3, kind="csat", required=False,
                                  text="How satisfied are you with our delivery?")
    SurveyQuestion.objects.create(survey=survey, position=4, kind="multiple", required=False,
                                  text="What do you buy from us?", options=["Tea", "Coffee", "Teaware", "Gifts"])
    SurveyQuestion.objects.create(survey=survey, position=5, kind="text", required=False,
                                  text="Anything else you would like to tell us?")
    delivery = Survey.objects.create(name="How was your delivery?", audience="post_purchase", days_after_order=3,
                                     opens_at=now - timedelta(days=30))
    SurveyQuestion.objects.create(survey=delivery, position=1, kind="csat",
                                  text="How satisfied are you with your last delivery?")
    SurveyQuestion.objects.create(survey=delivery, position=2, kind="single", required=False,
                                  text="How did it arrive?", options=["On time", "A little late", "Very late"])
    keys = {q.position: f"q{q.pk}" for q in survey.questions.all()}
    demo = context["member"]
    partner = context["partners"][0]
    members = [e.member for e in ExternalId.objects.filter(partner=partner).select_related("member")
               .order_by("external_id") if e.member_id != demo.pk]
    for member in rng.sample(members, min(140, len(members))):
        when = now - timedelta(days=rng.randint(0, 55), minutes=rng.randint(0, 900))
        # Opinions improve over the weeks: a program getting better.
        score = max(0, min(10, round(rng.gauss(7.2 + 1.5 * (55 - (now - when).days) / 55, 2.3))))
        mood = "low" if score <= 6 else ("mid" if score <= 8 else "high")
        answers = {keys[1]: str(score), keys[3]: str(max(1, min(5, round(score / 2.2 + rng.uniform(0, 1))))),
                   keys[4]: [str(i) for i in sorted(rng.sample(range(4), rng.randint(1, 3)))]}
        if mood == "low":
            answers[keys[2]] = rng.choice(COMMENTS["low"])
        elif rng.random() < 0.4:
            answers[keys[5]] = rng.choice(COMMENTS[mood])
        finish = rng.random() > 0.05
        services.response_save(member=member, survey_id=survey.pk, round=1, answers=answers, finish=finish, now=when)


def _seed_referrals(*, rng, context, now) -> None:
    partner, demo = context["partners"][0], context["member"]
    names = ["Robin", "Sasha", "Toni", "Kim", "Alex", "Charlie", "Jules", "Sam"]
    friends = {}
    for index, name in enumerate(names):
        member, _ = member_upsert_for_partner(partner=partner, external_id=f"ref-{index}", data={
            "email": f"{name.lower()}.friend{index}@example.org", "first_name": name, "last_name": "Newman"})
        friends[name] = member
        services.referral_link(friend=member, code=demo.referral_code, source="link", device=f"demo-device-{index}",
                               now=now - timedelta(days=40 - index))

    def buy(name, order_id, days_ago, total="45.00"):
        payload = {"order_id": order_id, "member": f"ref-{names.index(name)}", "currency": "EUR", "total": total,
                   "placed_at": (now - timedelta(days=days_ago)).isoformat(),
                   "lines": [{"sku": "KIT-TASTER", "name": "Tasting kit", "category": "gifts", "quantity": 1,
                              "unit_price": total}]}
        order_record(partner=partner, order=parse_order(payload, accepted_currencies=["EUR", "GBP"], now=now))

    buy("Robin", "REF-1001", 30)  # rewarded: the return window has passed
    buy("Sasha", "REF-1002", 25)  # rewarded
    buy("Toni", "REF-1003", 4)  # converted, rewards pending
    buy("Kim", "REF-1004", 6)  # returned: void
    buy("Alex", "REF-1005", 2, total="12.00")  # under the minimum: still only signed up
    # The engine's hook checks conversions once the seeding transaction commits; the demo checks
    # them now (safe twice) so that the return and the settling below see them.
    services.referrals_check(friend_ids=[member.pk for member in friends.values()], now=now)
    order_refund(partner=partner, order_id="REF-1004", refund=parse_refund({"refund_id": "R1"}))
    services.referrals_check(friend_ids=[friends["Kim"].pk], now=now)
    services.referrals_settle(now=now)
    # Three sign-ups from one device for another referrer: flagged, waiting for staff.
    referrer = Member.objects.filter(first_name__gt="").exclude(pk=demo.pk).order_by("pk").first()
    for index in range(3):
        member, _ = member_upsert_for_partner(partner=partner, external_id=f"dup-{index}", data={
            "email": f"promo.hunter{index + 1}@example.net", "first_name": "Pat", "last_name": "Hunter"})
        services.referral_link(friend=member, code=referrer.referral_code, source="link", device="one-phone",
                               now=now - timedelta(hours=index))
