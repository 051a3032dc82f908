"""Writes of the community. The modules:

- ``profiles``: public profiles and spotlights;
- ``reviews``: products, reviews and their photos, moderation of reviews, helpful votes, reports;
- ``questions``: questions and answers and their moderation;
- ``moderation``: automatic flags, the posting limit, relevance, settings, the moderation log;
- ``ratings``: products' rating summaries, kept in step with their published reviews;
- ``requests``: review requests after an order.
"""

from django.db import transaction

from community.services.moderation import banned_words_recheck, community_settings, community_settings_update
from community.services.profiles import member_erased as profile_erased
from community.services.profiles import public_profile_update, spotlight_create
from community.services.questions import answer_post, answer_vote_helpful, post_moderate, question_ask
from community.services.ratings import product_ratings_recount, ratings_remove
from community.services.requests import review_requests_send
from community.services.reviews import (
    ReviewInput,
    product_ensure,
    product_upsert,
    products_from_order_lines,
    review_approve,
    review_feature,
    review_photos_check,
    review_reject,
    review_reply,
    review_report,
    review_submit,
    review_vote_helpful,
    reviews_moderate,
)

__all__ = [
    "ReviewInput", "answer_post", "answer_vote_helpful", "banned_words_recheck", "community_settings",
    "community_settings_update", "member_erased", "post_moderate", "product_ensure", "product_ratings_recount",
    "product_upsert", "products_from_order_lines", "profile_erased", "public_profile_update", "question_ask",
    "review_approve", "review_feature", "review_reject", "review_reply", "review_report", "review_requests_send",
    "review_photos_check", "review_submit", "review_vote_helpful", "reviews_moderate", "spotlight_create",
]


def member_erased(member) -> None:
    """Erasure: the public profile, and everything the member wrote with its photos. Points the
    member earned for reviews stay in the ledger (the program's books)."""
    from community.models import Answer, ModerationStatus, Question, Review

    profile_erased(member)
    with transaction.atomic():
        # Locked: a moderator approving one of them meanwhile waits, then finds it gone.
        reviews = list(Review.objects.select_for_update().filter(member=member).order_by("pk")
                       .prefetch_related("photos"))
        for review in reviews:
            for photo in review.photos.all():
                photo.image.delete(save=False)
                photo.thumbnail.delete(save=False)
            review.delete()
        Question.objects.filter(member=member).delete()
        Answer.objects.filter(member=member).delete()
        ratings_remove(reviews=[(review.product_id, review.rating) for review in reviews
                                if review.status == ModerationStatus.APPROVED])
