"""Two APIs of the storefront embed.

- The partner's (``/api/v1/embed/``, scope ``embed:manage``): its public key, its shop origins,
  the secret its backend signs customer tokens with.
- The widgets' (``/embed/v1/...``): called by ``loyalty.js`` from the shop's pages with
  ``X-Store`` and, for a signed-in shopper, ``Authorization: Bearer <customer token>``. Parse,
  call one selector or service, answer; errors in the API's error shape.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.http import HttpResponse
from django.views.decorators.http import etag, require_GET
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import parsers, serializers, status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.idempotency import IDEMPOTENCY, REPLAY_422, idempotent
from accounts.models import Scope
from accounts.schema import ERRORS, Text, WholeNumber
from community import services as community
from community.apis import known_product, reviews_page
from community.selectors import product_questions
from core.errors import Invalid
from core.replica import replica_reads
from rewards.models import Reward
from rewards.services import reward_redeem
from storefront import selectors, services
from storefront.authentication import ShopperSignedIn, StoreAuthentication, StoreRateThrottle
from storefront.origins import ORIGIN_PATTERN

# --- The partner's embed settings ------------------------------------------------------------------


class EmbedOutSerializer(serializers.Serializer):
    public_key = serializers.CharField(help_text="pk_live_...: the data-store attribute of the script tag.")
    origins = serializers.ListField(child=serializers.CharField(), help_text="Shop origins allowed to call.")
    has_secret = serializers.BooleanField(help_text="Whether a token secret was made (rotate-secret).")


@extend_schema_field({"type": "string", "pattern": ORIGIN_PATTERN, "maxLength": 200,
                      "description": "https://shop.example.com[:port], or http:// for localhost only."})
class OriginField(Text):
    pass


class EmbedInSerializer(serializers.Serializer):
    origins = serializers.ListField(child=OriginField(max_length=200), max_length=services.MAX_ORIGINS,
                                    help_text='["https://shop.example.com"]: https, or http for localhost only.')


class EmbedSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="sk_live_...: sign customer tokens (HS256) with it. Shown once.")


def _embed_body(embed) -> dict:
    return {"public_key": embed.public_key, "origins": embed.origins, "has_secret": bool(embed.secret_encrypted)}


class EmbedApi(APIView):
    scopes = {"GET": Scope.EMBED_MANAGE, "PUT": Scope.EMBED_MANAGE}

    @extend_schema(operation_id="embed_retrieve", responses={200: EmbedOutSerializer, **ERRORS},
                   description="The storefront embed of this partner: its public key (made on first call) and the "
                   "shop origins whose pages may call the widget API.")
    def get(self, request):
        return Response(_embed_body(services.store_embed_ensure(partner=request.user)))

    @extend_schema(operation_id="embed_update", request=EmbedInSerializer, parameters=[IDEMPOTENCY],
                   responses={200: EmbedOutSerializer, **ERRORS, **REPLAY_422},
                   description="Replace the shop origins allowed to call the widget API (CORS).")
    @idempotent
    def put(self, request):
        data = EmbedInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        embed = services.store_embed_origins_set(partner=request.user, origins=data.validated_data["origins"])
        return Response(_embed_body(embed))


class EmbedRotateSecretApi(APIView):
    scopes = {"POST": Scope.EMBED_MANAGE}

    @extend_schema(operation_id="embed_rotate_secret", request=None, parameters=[IDEMPOTENCY],
                   responses={200: EmbedSecretSerializer, **ERRORS, **REPLAY_422},
                   description="A new secret for customer tokens, shown once; tokens signed with the previous one "
                   "are accepted for 24 hours more.")
    @idempotent(secret_fields=("secret",))
    def post(self, request):
        return Response({"secret": services.store_embed_secret_rotate(partner=request.user)})


# --- The widgets' API --------------------------------------------------------------------------------


class WidgetApi(APIView):
    """The store and the shopper come from ``StoreAuthentication``; not part of the partner schema."""

    authentication_classes = [StoreAuthentication]
    permission_classes = [ShopperSignedIn]
    throttle_classes = [StoreRateThrottle]
    schema = None
    members_only = False


class ProgramWidgetApi(WidgetApi):
    def get(self, request):
        with replica_reads():  # the same for every guest: the replica may answer
            return Response(selectors.program_public())


class MeWidgetApi(WidgetApi):
    members_only = True

    def get(self, request):
        shopper = request.auth
        return Response({**selectors.program_public(with_rewards=False),
                         **selectors.member_view(member=shopper.member, partner=shopper.partner,
                                                 external_id=shopper.external_id)})


class RedeemInSerializer(serializers.Serializer):
    reward = WholeNumber(min_value=1)


class RedeemWidgetApi(WidgetApi):
    members_only = True

    @idempotent(scope=lambda request: f"embed-member-{request.auth.member.pk}")
    def post(self, request):
        data = RedeemInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # As the partner API: an unknown id is 400, a reward not on offer 409 from the service.
        reward = Reward.objects.filter(pk=data.validated_data["reward"]).first()
        if reward is None:
            raise Invalid("Unknown reward.", code="unknown_reward", fields={"reward": "No such reward."})
        shopper = request.auth
        redemption = reward_redeem(member=shopper.member, reward=reward, partner=shopper.partner)
        shopper.member.refresh_from_db(fields=["points_available", "points_pending", "points_owed"])
        return Response({"coupon": {"code": redemption.coupon.code, "reward": reward.name,
                                    "expires_at": redemption.coupon.expires_at.isoformat()},
                         "points": {"available": shopper.member.points_available,
                                    "pending": shopper.member.points_pending}},
                        status=status.HTTP_201_CREATED)


class StarsWidgetApi(WidgetApi):
    def get(self, request):
        skus = [sku for sku in request.query_params.getlist("sku") if sku]
        if not skus or len(skus) > selectors.MAX_STARS_SKUS or any(len(sku) > 100 for sku in skus):
            raise Invalid("Name the products.", fields={"sku": f"1 to {selectors.MAX_STARS_SKUS} sku parameters."})
        with replica_reads():
            return Response({"results": selectors.stars(skus=list(dict.fromkeys(skus)))})


class ReviewWriteSerializer(serializers.Serializer):
    rating = serializers.IntegerField(min_value=1, max_value=5, error_messages={
        "min_value": "Choose 1 to 5 stars.", "max_value": "Choose 1 to 5 stars.", "invalid": "Choose 1 to 5 stars.",
        "required": "Choose 1 to 5 stars."})
    title = serializers.CharField(max_length=120)
    text = serializers.CharField(max_length=5000)


class ReviewsWidgetApi(WidgetApi):
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]

    def get(self, request, sku: str):
        product = known_product(sku)
        body = reviews_page(request, product=product)
        body["questions"] = [
            {"id": q.pk, "text": q.text, "answers": [{"text": a.text, "by_staff": a.staff_user_id is not None,
                                                      "verified_buyer": a.verified_buyer} for a in q.published_answers]}
            for q in product_questions(product=product)]
        body["viewer"] = selectors.reviewer_view(product=product, member=request.auth.member,
                                                 partner=request.auth.partner,
                                                 review_ids=[r["id"] for r in body["results"]])
        return Response(body)

    def post(self, request, sku: str):
        if request.auth.member is None:
            raise NotAuthenticated(ShopperSignedIn.message)
        product = known_product(sku)
        data = ReviewWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        photos = request.FILES.getlist("photos")
        review = community.review_submit(member=request.auth.member, product=product, photos=photos,
                                         data=community.ReviewInput(**data.validated_data))
        published = review.status == "approved"
        return Response({"id": review.pk, "status": review.status,
                         "message": "Thank you: your review is published." if published else
                         "Thank you: your review will appear once a moderator has read it."},
                        status=status.HTTP_201_CREATED)


class HelpfulWidgetApi(WidgetApi):
    members_only = True

    def post(self, request, review_id: int):
        review = community.review_vote_helpful(review_id=review_id, member=request.auth.member)
        return Response({"id": review.pk, "helpful_count": review.helpful_count})


class QuestionInSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=1000)


class QuestionWidgetApi(WidgetApi):
    members_only = True

    def post(self, request, sku: str):
        data = QuestionInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        question = community.question_ask(member=request.auth.member, product=known_product(sku),
                                          text=data.validated_data["text"])
        return Response({"id": question.pk, "status": question.status,
                         "message": "Thank you: your question will appear once a moderator has read it."},
                        status=status.HTTP_201_CREATED)


# --- The script -------------------------------------------------------------------------------------

SCRIPT = Path(__file__).resolve().parent / "static" / "storefront" / "loyalty.js"


def _script() -> tuple[bytes, str]:
    """The script and its ETag, read once per process."""
    if "script" not in _loaded:
        body = SCRIPT.read_bytes()
        _loaded["script"] = (body, hashlib.sha256(body).hexdigest()[:20])
    return _loaded["script"]


_loaded: dict[str, tuple[bytes, str]] = {}


@require_GET
@etag(lambda request: _script()[1])
def loyalty_js(request):
    """The one script a shop includes; revalidated by its ETag after an hour (a new version of the
    file reaches every shop within the hour)."""
    response = HttpResponse(_script()[0], content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=3600"
    response["Access-Control-Allow-Origin"] = "*"  # a public file: shops may load it with crossorigin
    return response
