from django.apps import AppConfig


class CommunityConfig(AppConfig):
    name = "community"
    verbose_name = "Community"

    def ready(self):
        from accounts import services as account_services
        from community import services

        account_services.ERASURE_HOOKS.append(services.member_erased)
        account_services.EXPORT_SECTIONS["community_profile"] = _export
        account_services.EXPORT_SECTIONS["reviews"] = _export_reviews


def _export(member) -> dict | None:
    from community.models import PublicProfile

    profile = PublicProfile.objects.filter(member=member).first()
    if profile is None:
        return None
    return {"is_public": profile.is_public, "display_name": profile.display_name,
            "avatar": profile.avatar.url if profile.avatar else None}


def _export_reviews(member) -> dict:
    from community.models import Answer, Question, Review

    return {
        "reviews": [{
            "product_sku": review.product.sku, "rating": review.rating, "title": review.title, "text": review.text,
            "status": review.status, "submitted_at": review.submitted_at.isoformat(),
            "photos": [photo.image.url for photo in review.photos.all()],
        } for review in Review.objects.filter(member=member).select_related("product").prefetch_related("photos")],
        "questions": list(Question.objects.filter(member=member).values("product__sku", "text", "status",
                                                                         "created_at")),
        "answers": list(Answer.objects.filter(member=member).values("question_id", "text", "status", "created_at")),
    }
