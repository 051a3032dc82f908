"""Partner API of recommendations: bought together with a product, and for a member."""

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Scope
from accounts.schema import ERRORS
from accounts.selectors import member_for_partner
from community.services import product_ensure
from core.api import whole_number
from core.errors import NotFound
from recommendations.selectors import MAX_LIMIT, Recommendation, recommendations_for_member, related_products

DEFAULT_LIMIT = 10
LIMIT = OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, required=False,
                         description=f"From 1 to {MAX_LIMIT}; {DEFAULT_LIMIT} by default.")


class RecommendationSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    url = serializers.URLField(help_text="The product's page in your store (the `url` you sent for it), or its "
                               "page in the member portal when you never sent one.")
    score = serializers.FloatField(help_text="Higher first; it orders this list and means nothing across lists.")


class RecommendationsSerializer(serializers.Serializer):
    results = RecommendationSerializer(many=True)


def _limit(request) -> int:
    return whole_number(request.query_params.get("limit") or str(DEFAULT_LIMIT), "limit", 1, MAX_LIMIT)


def _body(request, found: list[Recommendation]) -> dict:
    return {"results": [{
        "sku": item.sku, "name": item.name, "score": item.score,
        "url": item.url or request.build_absolute_uri(reverse("community:product", args=[item.sku])),
    } for item in found]}


class ProductRelatedApi(APIView):
    scopes = {"GET": Scope.MEMBERS_READ}

    @extend_schema(operation_id="products_related", parameters=[LIMIT],
                   responses={200: RecommendationsSerializer, **ERRORS},
                   description="Products bought together with this one, surest first (computed nightly from "
                   "every order not refunded in full; the score is the pair's log-likelihood ratio G²). Empty "
                   "when nothing is bought with it more often than chance would have it.")
    def get(self, request, sku: str):
        limit = _limit(request)
        product = product_ensure(sku=sku)
        if product is None:
            raise NotFound(f"No product {sku!r}.", code="unknown_product", fields={"sku": "No such product."})
        return Response(_body(request, related_products(product=product, limit=limit)))


class MemberRecommendationsApi(APIView):
    scopes = {"GET": Scope.MEMBERS_READ}

    @extend_schema(operation_id="members_recommendations", parameters=[LIMIT],
                   responses={200: RecommendationsSerializer, **ERRORS},
                   description="Products for this member, best first: bought together with what they bought "
                   "from you, and what members of their tier buy most; what they bought is left out unless "
                   "people buy it again. A member with no orders gets what sells most. Only your own orders "
                   "count as the member's history.")
    def get(self, request, external_id: str):
        limit = _limit(request)
        member = member_for_partner(partner=request.user, external_id=external_id)
        return Response(_body(request, recommendations_for_member(member=member, limit=limit, partner=request.user)))
