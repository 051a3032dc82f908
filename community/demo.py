"""Demo community for ``seed_demo``: products with reviews (some with drawn photos, most approved,
a few waiting or rejected), helpful votes, questions and answers, testimonials; some members share
a public profile (with a drawn avatar), one is in the spotlight. Most stay private, as most
shoppers would."""

import io
import random

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw, ImageFont

from accounts.models import ExternalId, Member
from community.models import PublicProfile, Spotlight
from community.services import public_profile_update, spotlight_create

PUBLIC_SHARE = 0.3


def _avatar(initials: str, rng: random.Random) -> SimpleUploadedFile:
    colour = tuple(rng.randint(40, 180) for _ in range(3))
    image = Image.new("RGB", (320, 320), colour)
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=140)
    except TypeError:  # Pillow before 10.1
        font = ImageFont.load_default()
    draw.text((160, 160), initials, fill=(255, 255, 255), font=font, anchor="mm")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return SimpleUploadedFile("avatar.jpg", buffer.getvalue(), content_type="image/jpeg")


def seed(*, rng: random.Random, stdout, context: dict) -> dict:
    _seed_reviews(rng=rng, context=context)
    if PublicProfile.objects.exists():
        return {}
    partner = context["partners"][0]
    members = [e.member for e in ExternalId.objects.filter(partner=partner).select_related("member")
               .order_by("external_id") if e.member.first_name]
    public = []
    for member in members:
        if member.pk == context["member"].pk or rng.random() < PUBLIC_SHARE:
            name = f"{member.first_name} {member.last_name[0]}."
            avatar = _avatar(member.first_name[0] + member.last_name[0], rng) if rng.random() < 0.7 else None
            public.append(public_profile_update(member=member, is_public=True, display_name=name, avatar=avatar))
    if public and not Spotlight.objects.exists():
        featured = max(public, key=lambda p: p.member.points_available)
        spotlight_create(member=featured.member, headline=f"Meet {featured.display_name}",
                         text="A regular since the shop opened, and the first to try every new tea.",
                         actor_user=context.get("staff"))
    return {}


# --- Products, reviews, questions -----------------------------------------------------------------

REVIEW_LINES = {
    5: [("Exactly what I hoped for",
         "Wonderful quality, arrived quickly and well packed. I have already ordered it again."),
        ("My new favourite", "I have tried many, and this one is the one I reach for every morning."),
        ("A lovely gift", "Bought it for my mother and she asked where to get more. Beautifully presented.")],
    4: [("Very good", "Really good, only the packaging could be smaller. Would buy again."),
        ("Good value", "Good quality for the price; a little stronger than I expected, which I like.")],
    3: [("Fine, nothing special", "It does the job. I expected a bit more given the description."),
        ("Okay", "Decent, but I prefer the one I bought before. Delivery was quick.")],
    2: [("Not for me", "The taste was flatter than I hoped, and the bag does not reseal well.")],
    1: [("Disappointed", "Arrived damaged and the replacement took two weeks. The product itself is fine.")],
}
QUESTIONS = [
    ("How long does it keep once opened?", "About three months in an airtight tin, away from light."),
    ("Is it suitable as a gift?", "Yes, it comes in a gift box, and we can add a card at checkout."),
    ("Can I use it with a glass teapot?", "Absolutely, that is how I use it every day."),
]


def _photo(label: str, rng: random.Random) -> SimpleUploadedFile:
    """A 'snapshot' of the product: a coloured table, a cup, and the product's name."""
    base = tuple(rng.randint(150, 230) for _ in range(3))
    image = Image.new("RGB", (1200, 900), base)
    draw = ImageDraw.Draw(image)
    for y in range(900):
        shade = int(40 * y / 900)
        draw.line([(0, y), (1200, y)], fill=tuple(max(0, c - shade) for c in base))
    cup = tuple(rng.randint(30, 140) for _ in range(3))
    draw.ellipse((420, 520, 780, 640), fill=(90, 70, 50))
    draw.rounded_rectangle((450, 300, 750, 590), radius=40, fill=cup)
    draw.arc((700, 360, 830, 500), start=270, end=90, fill=cup, width=22)
    try:
        font = ImageFont.load_default(size=56)
    except TypeError:
        font = ImageFont.load_default()
    draw.text((600, 170), label, fill=(255, 255, 255), font=font, anchor="mm")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    return SimpleUploadedFile("photo.jpg", buffer.getvalue(), content_type="image/jpeg")


def _seed_reviews(*, rng: random.Random, context: dict) -> None:
    from community.models import Product, Review
    from community.services import (
        ReviewInput,
        answer_post,
        community_settings_update,
        post_moderate,
        product_upsert,
        question_ask,
        review_approve,
        review_feature,
        review_reject,
        review_reply,
        review_submit,
        review_vote_helpful,
    )
    from rewards.models import EarningRule, OrderLine
    from rewards.services import earning_rule_save

    if Product.objects.exists():
        return
    partner, staff = context["partners"][0], context.get("staff")
    if not EarningRule.objects.filter(activity_type="review_approved").exists():
        earning_rule_save(rule=EarningRule(name="Approved review", kind="fixed", activity_type="review_approved",
                                           points=50), actor_user=staff)
        earning_rule_save(rule=EarningRule(name="Photos in a review", kind="fixed", activity_type="review_photo",
                                           points=25), actor_user=staff)
    # The demo writes years of reviews in a minute: lift the posting limits while it does.
    community_settings_update(actor_user=staff, changes={"posts_per_hour": 100_000, "burst_count": 100_000})
    demo_member = context["member"]
    for sku, name, category, _price in context.get("products", []):
        product, _ = product_upsert(partner=partner, sku=sku, name=name, category=category,
                                    url=f"https://shop.example.com/p/{sku.lower()}")
        buyers = list(dict.fromkeys(
            OrderLine.objects.filter(sku=sku, order__member__first_name__gt="").exclude(order__member=demo_member)
            .order_by("order_id").values_list("order__member", flat=True)))[:14]
        reviews = []
        for member in Member.objects.filter(pk__in=buyers):
            rating = rng.choices([5, 4, 3, 2, 1], weights=[45, 30, 12, 8, 5])[0]
            title, text = rng.choice(REVIEW_LINES[rating])
            photos = [_photo(name, rng)] if rng.random() < 0.25 else []
            review = review_submit(member=member, product=product, data=ReviewInput(rating, title, f"{text} ({name})"),
                                   photos=photos)
            roll = rng.random()
            if roll < 0.85:
                reviews.append(review_approve(review_id=review.pk, moderator=staff))
            elif roll < 0.9:
                review_reject(review_id=review.pk, moderator=staff, reason="Please keep to the product itself.")
        for review in reviews:
            for voter in rng.sample(buyers, min(len(buyers), rng.randint(0, 4))):
                if voter != review.member_id:
                    review_vote_helpful(review_id=review.pk, member=Member.objects.get(pk=voter))
        low = [r for r in reviews if r.rating <= 2]
        if low:
            review_reply(review_id=low[0].pk, moderator=staff,
                         text="We are sorry to hear that. Our team has emailed you about a replacement.")
        if buyers and rng.random() < 0.7:
            asked, answered = rng.choice(QUESTIONS)
            question = question_ask(member=demo_member if sku == "POT-GLASS" else Member.objects.get(pk=buyers[-1]),
                                    product=product, text=asked)
            post_moderate(kind="question", post_id=question.pk, approve=True, moderator=staff)
            answer = answer_post(question_id=question.pk, member=Member.objects.get(pk=buyers[0]), text=answered)
            post_moderate(kind="answer", post_id=answer.pk, approve=True, moderator=staff)
    for review in Review.objects.filter(status="approved", rating=5, photo_count__gt=0).order_by("pk")[:3]:
        review_feature(review_id=review.pk, moderator=staff, featured=True)
    # The demo member: one published review, and products bought but not reviewed yet.
    bought = OrderLine.objects.filter(order__member=demo_member).values_list("sku", flat=True).first()
    if bought:
        review = review_submit(member=demo_member, product=Product.objects.get(sku=bought),
                               data=ReviewInput(5, "My daily cup", "Smooth and fragrant; I drink it every morning."),
                               photos=[_photo("My daily cup", rng)])
        review_approve(review_id=review.pk, moderator=staff)
    community_settings_update(actor_user=staff, changes={"posts_per_hour": 10, "burst_count": 3,
                                                         "banned_words": "scam\nrubbish"})
