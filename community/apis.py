"""Partner API of the community: products, and the approved reviews with their rating summary
for the store's own product pages."""

from django.core.paginator import Paginator
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.idempotency import IDEMPOTENCY, REPLAY_422, idempotent
from accounts.models import Scope
from accounts.schema import ERRORS, PAGE, Identifier, Text
from community import selectors, services
from community.models import Product
from core.api import whole_number
from core.errors import Invalid, NotFound
from core.replica import replica_reads


class ProductInSerializer(serializers.Serializer):
    sku = Identifier()
    name = Text(max_length=255)
    category = Text(max_length=100, required=False, allow_blank=True, default="")
    url = serializers.URLField(max_length=500, required=False, allow_blank=True, default="")
    image_url = serializers.URLField(max_length=500, required=False, allow_blank=True, default="")


class ProductOutSerializer(serializers.ModelSerializer):
    page_url = serializers.SerializerMethodField(help_text="The product's page in the member portal.")

    class Meta:
        model = Product
        fields = ["sku", "name", "category", "url", "image_url", "page_url", "created_at", "updated_at"]

    def get_page_url(self, product) -> str:
        from django.urls import reverse

        return self.context["request"].build_absolute_uri(reverse("community:product", args=[product.sku]))


class SummarySerializer(serializers.Serializer):
    count = serializers.IntegerField()
    average = serializers.CharField(allow_null=True, help_text="One decimal, e.g. \"4.3\"; null without reviews.")
    distribution = serializers.DictField(child=serializers.IntegerField(), help_text="{\"5\": 12, ..., \"1\": 0}")


class PhotoSerializer(serializers.Serializer):
    url = serializers.URLField()
    thumbnail_url = serializers.URLField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class ReviewOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    rating = serializers.IntegerField()
    title = serializers.CharField()
    text = serializers.CharField()
    author = serializers.CharField()
    verified_buyer = serializers.BooleanField()
    rewarded = serializers.BooleanField(help_text="The reviewer earned points for it (disclose it).")
    helpful_count = serializers.IntegerField()
    photos = PhotoSerializer(many=True)
    staff_reply = serializers.CharField(allow_blank=True)
    published_at = serializers.DateTimeField()


class ReviewPageSerializer(serializers.Serializer):
    product = ProductOutSerializer()
    summary = SummarySerializer()
    count = serializers.IntegerField(help_text="Reviews matching the filters.")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ReviewOutSerializer(many=True)


class ProductUpsertApi(APIView):
    scopes = {"POST": Scope.PRODUCTS_WRITE}

    @extend_schema(operation_id="products_upsert", request=ProductInSerializer, parameters=[IDEMPOTENCY],
                   responses={201: ProductOutSerializer, 200: ProductOutSerializer, **ERRORS, **REPLAY_422},
                   description="Create (201) or update (200) a product by SKU.")
    @idempotent
    def post(self, request):
        serializer = ProductInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product, created = services.product_upsert(partner=request.user, **serializer.validated_data)
        return Response(ProductOutSerializer(product, context={"request": request}).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ProductReviewsApi(APIView):
    scopes = {"GET": Scope.REVIEWS_READ}

    @extend_schema(
        operation_id="products_reviews",
        parameters=[
            OpenApiParameter("sort", str, enum=list(selectors.SORTS), required=False,
                             description="relevant (default: helpful votes, photos, length, age), helpful, newest, "
                             "highest, lowest"),
            OpenApiParameter("rating", int, enum=[1, 2, 3, 4, 5], required=False),
            OpenApiParameter("with_photos", bool, required=False),
            PAGE,
            OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": 100}, required=False),
        ],
        responses={200: ReviewPageSerializer, **ERRORS},
        description="The approved reviews of a product and its rating summary (over all approved reviews).",
    )
    def get(self, request, sku: str):
        return Response(reviews_page(request, product=known_product(sku)))


def known_product(sku: str) -> Product:
    """The product with this SKU (made from the orders that name it if no partner sent it yet), or
    ``NotFound`` naming ``sku``."""
    product = services.product_ensure(sku=sku)
    if product is None:
        raise NotFound(f"No product {sku!r}.", code="unknown_product", fields={"sku": "No such product."})
    return product


def reviews_page(request, *, product: Product) -> dict:
    """The approved reviews of a product by the request's ``sort``, ``rating``, ``with_photos``,
    ``page`` and ``page_size``, with the rating summary: for partners and for the storefront widget."""
    params = request.query_params
    sort = params.get("sort") or "relevant"
    if sort not in selectors.SORTS:
        raise Invalid("Unknown sort.", fields={"sort": f"One of {', '.join(selectors.SORTS)}."})
    rating = params.get("rating")
    if rating not in (None, "", "1", "2", "3", "4", "5"):
        raise Invalid("Rating is 1 to 5.", fields={"rating": "A whole number from 1 to 5."})
    with_photos = params.get("with_photos", "").lower()
    if with_photos not in ("", "true", "false", "1", "0"):
        raise Invalid("with_photos is true or false.", fields={"with_photos": "true or false."})
    page_size = whole_number(params.get("page_size") or "20", "page_size", 1, 100)
    number = whole_number(params.get("page") or "1", "page", 1, None)
    # What a shop shows on its product page: it may come from the replica (the product itself was
    # read, or made from an order line, on the primary).
    with replica_reads():
        summary = selectors.rating_summary(product=product)
        reviews = selectors.product_reviews(product=product, sort=sort, rating=int(rating) if rating else None,
                                            with_photos=with_photos in ("true", "1"))
        paginator = Paginator(reviews, page_size)
        if with_photos not in ("true", "1"):
            paginator.count = summary.reviews_with(int(rating) if rating else None)
        if number > max(paginator.num_pages, 1):
            raise NotFound("No such page.", code="unknown_page", fields={"page": "Past the last page."})
        page = paginator.page(number)
        absolute = request.build_absolute_uri
        return {
            "product": ProductOutSerializer(product, context={"request": request}).data,
            "summary": {"count": summary.count, "average": str(summary.average) if summary.average else None,
                        "distribution": {str(n): count for n, count, _ in summary.distribution}},
            "count": paginator.count,
            "next": _page_link(request, number + 1) if page.has_next() else None,
            "previous": _page_link(request, number - 1) if page.has_previous() else None,
            "results": [{
                "id": review.pk, "rating": review.rating, "title": review.title, "text": review.text,
                "author": selectors.author_name(review.member), "verified_buyer": review.verified_buyer,
                "rewarded": review.rewarded, "helpful_count": review.helpful_count,
                "photos": [{"url": absolute(p.image.url), "thumbnail_url": absolute(p.thumbnail.url),
                            "width": p.width, "height": p.height} for p in review.photos.all()],
                "staff_reply": review.staff_reply, "published_at": review.published_at,
            } for review in page.object_list],
        }


def _page_link(request, number: int) -> str:
    query = request.query_params.copy()
    query["page"] = str(number)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")

