"""Partner API of the points engine. Views parse, call one service, and shape the answer.

Request bodies are checked by ``rewards.payloads`` (fast, exact field paths); the serializers
below describe the same shapes for the OpenAPI schema.
"""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.idempotency import IDEMPOTENCY, REPLAY_422, idempotent
from accounts.models import ExternalId, Scope
from accounts.schema import (
    ERRORS,
    IDENTIFIER_SCHEMA,
    ErrorSerializer,
    Identifier,
    Money,
    PositiveMoney,
    Text,
    WholeNumber,
)
from accounts.selectors import member_for_partner, partner_member_ids_query
from core.errors import Conflict, Invalid, NotFound
from core.text import IDENTIFIER_RULE, is_identifier
from rewards import selectors, services
from rewards.currencies import money_str
from rewards.models import Coupon, EntryKind, LedgerEntry, Reward
from rewards.payloads import (
    EVENT_TYPE_PATTERN,
    MAX_LINES,
    parse_adjustment,
    parse_event,
    parse_order,
    parse_refund,
)
from rewards.program import current_program

MAX_BATCH = 1000
CONFLICT = {409: OpenApiResponse(ErrorSerializer, description="The program's state refuses this now.")}


# --- Shapes for the schema --------------------------------------------------------------------------

class LineInSerializer(serializers.Serializer):
    sku = Identifier()
    name = Text(max_length=255, required=False, allow_blank=True, allow_null=True)
    category = Text(max_length=100, required=False, allow_blank=True, allow_null=True)
    quantity = WholeNumber(min_value=1, max_value=100_000)
    unit_price = Money()


class OrderInSerializer(serializers.Serializer):
    order_id = Identifier()
    member = Identifier(help_text="Your external_id for the customer.")
    placed_at = serializers.DateTimeField(help_text="ISO 8601 with a time zone offset; not in the future, "
                                          "not before 1990.")
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", help_text="ISO 4217, one the program accepts.")
    total = Money(help_text="Lines + shipping + tax - discount, to within one minor unit per line; no more "
                  "decimals than the currency has.")
    shipping = Money(required=False, allow_null=True)
    tax = Money(required=False, allow_null=True)
    discount = Money(required=False, allow_null=True, help_text="At most the sum of the lines.")
    lines = serializers.ListField(child=LineInSerializer(), min_length=1, max_length=MAX_LINES)


class RuleAwardSerializer(serializers.Serializer):
    rule_id = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()
    points = serializers.IntegerField()


class OrderOutSerializer(serializers.Serializer):
    order_id = serializers.CharField()
    member = serializers.CharField()
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    points = serializers.IntegerField()
    pending = serializers.BooleanField()
    available_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    rules = RuleAwardSerializer(many=True)
    error = ErrorSerializer.ErrorBody(required=False)


class BatchInSerializer(serializers.Serializer):
    orders = serializers.ListField(child=OrderInSerializer(), min_length=1, max_length=MAX_BATCH)


class BatchOutSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = OrderOutSerializer(many=True)


class RefundLineInSerializer(serializers.Serializer):
    sku = Identifier()
    quantity = WholeNumber(min_value=1, max_value=100_000)


class RefundInSerializer(serializers.Serializer):
    refund_id = Identifier()
    amount = PositiveMoney(required=False, allow_null=True,
                   help_text="A partial refund by amount (more than zero), spread over the lines by value.")
    lines = RefundLineInSerializer(many=True, required=False, help_text="A refund of these units; not with amount.")


class RefundOutSerializer(serializers.Serializer):
    refund_id = serializers.CharField()
    order_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["accepted", "duplicate"])
    amount = serializers.CharField()
    currency = serializers.CharField()
    points_reversed = serializers.IntegerField()
    order_points = serializers.IntegerField(help_text="What the order earns now.")
    order_status = serializers.CharField()


class EventInSerializer(serializers.Serializer):
    event_id = Identifier()
    type = serializers.RegexField(EVENT_TYPE_PATTERN, help_text="Lower-case letters, digits and underscores; not a "
                                  "built-in activity type (order, refund...).")
    member = Identifier()
    occurred_at = serializers.DateTimeField(help_text="Not in the future, not before 1990.")
    properties = serializers.DictField(required=False, allow_null=True, help_text="At most 10,000 characters of JSON.")


class EventOutSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    type = serializers.CharField()
    member = serializers.CharField()
    status = serializers.ChoiceField(choices=["accepted", "duplicate"])
    points = serializers.IntegerField()
    rules = RuleAwardSerializer(many=True)


class BalanceSerializer(serializers.Serializer):
    available = serializers.IntegerField()
    pending = serializers.IntegerField()
    owed = serializers.IntegerField()


@extend_schema_field({"type": "integer", "minimum": -10_000_000, "maximum": 10_000_000, "not": {"enum": [0]}})
class AdjustmentPoints(WholeNumber):
    pass


class AdjustmentInSerializer(serializers.Serializer):
    points = AdjustmentPoints(help_text="Positive to credit, negative to debit; not zero.")
    reason = Text(max_length=500)


class AdjustmentOutSerializer(serializers.Serializer):
    entry_id = serializers.IntegerField()
    points = serializers.IntegerField()
    reason = serializers.CharField()
    balance = BalanceSerializer()


class LedgerEntrySerializer(serializers.ModelSerializer):
    points = serializers.IntegerField(read_only=True)
    own = serializers.SerializerMethodField(
        help_text="False for an entry another store of a shared member caused: its description and reason "
        "are left out, its points and kind stay.")

    class Meta:
        model = LedgerEntry
        fields = ["id", "kind", "points", "available_delta", "pending_delta", "owed_delta", "description",
                  "reason", "effective_at", "created_at", "available_at", "expires_at", "own"]

    def get_own(self, entry) -> bool:
        return selectors.told_to_partner(entry, self.context["request"].user.pk)[0]

    def to_representation(self, entry):
        data = super().to_representation(entry)
        _, data["description"], data["reason"] = selectors.told_to_partner(entry, self.context["request"].user.pk)
        return data


class RewardSerializer(serializers.ModelSerializer):
    value = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = Reward
        fields = ["id", "name", "description", "kind", "value", "currency", "product_sku", "points_cost", "stock",
                  "per_member_limit", "valid_from", "valid_to", "image_url"]

    def get_value(self, reward) -> str | None:
        if reward.value is None:
            return None
        return money_str(reward.value, reward.currency or "EUR") if reward.kind == "fixed_discount" else str(
            reward.value.normalize())

    def get_image_url(self, reward) -> str | None:
        return self.context["request"].build_absolute_uri(reward.image.url) if reward.image else None


class RedemptionInSerializer(serializers.Serializer):
    member = Identifier()
    reward = WholeNumber(min_value=1, max_value=2**63 - 1)


class CouponSerializer(serializers.Serializer):
    code = serializers.CharField()
    status = serializers.ChoiceField(choices=["active", "used", "expired"])
    reward = RewardSerializer()
    member = serializers.CharField(allow_null=True, help_text="Your external_id for the coupon's owner, if any.")
    expires_at = serializers.DateTimeField()
    used_at = serializers.DateTimeField(allow_null=True)
    used_order_id = serializers.CharField()


class RedemptionOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    member = serializers.CharField()
    points = serializers.IntegerField()
    reward = RewardSerializer()
    coupon = CouponSerializer()
    balance = BalanceSerializer()


class CouponUseInSerializer(serializers.Serializer):
    order_id = Text(max_length=100, required=False, allow_blank=True, help_text="The order the coupon was used on.")


# --- Answers ---------------------------------------------------------------------------------------

def _award_body(award) -> dict:
    return {
        "points": award.points,
        "pending": award.pending,
        "available_at": award.available_at.isoformat() if award.available_at else None,
        "expires_at": award.expires_at.isoformat() if award.expires_at else None,
        "rules": award.rules,
    }


def _order_body(result) -> dict:
    body = {"order_id": result.order_id, "member": result.member, "status": result.status, **_award_body(result.award)}
    if result.error:
        body["error"] = result.error
    return body


def _order_answer(result) -> tuple[int, dict]:
    """A recorded order's status code and body (the idempotency record carried with it holds them)."""
    return (status.HTTP_201_CREATED if result.status == "accepted" else status.HTTP_200_OK), _order_body(result)


def _balance(member) -> dict:
    member.refresh_from_db(fields=["points_available", "points_pending", "points_owed"])
    return {"available": member.points_available, "pending": member.points_pending, "owed": member.points_owed}


def _coupon_body(coupon: Coupon, *, partner, request) -> dict:
    external = ExternalId.objects.filter(partner=partner, member_id=coupon.member_id).values_list(
        "external_id", flat=True).first()
    return {
        "code": coupon.code, "status": coupon.status(),
        "reward": RewardSerializer(coupon.reward, context={"request": request}).data,
        "member": external, "expires_at": coupon.expires_at, "used_at": coupon.used_at,
        "used_order_id": coupon.used_order_id,
    }


def _member_from_body(partner, external_id: str):
    """A member named in a request body: unknown is bad input (400), not a missing page."""
    try:
        return member_for_partner(partner=partner, external_id=external_id)
    except NotFound as exc:
        raise Invalid(exc.message, code=exc.code, fields=exc.fields) from None


# --- Views -----------------------------------------------------------------------------------------

class OrderCreateApi(APIView):
    scopes = {"POST": Scope.ACTIVITIES_WRITE}

    @extend_schema(
        operation_id="orders_create", parameters=[IDEMPOTENCY], request=OrderInSerializer,
        responses={201: OrderOutSerializer, 200: OrderOutSerializer, **ERRORS, **CONFLICT, **REPLAY_422},
        description="Record an order. 201 with the points it earns and the rules that earned them; 200 when "
        "this order id was already recorded with the same content (nothing is counted twice); 409 when it was "
        "recorded with different content.",
    )
    @idempotent(answer=_order_answer)
    def post(self, request):
        order = parse_order(request.data, accepted_currencies=current_program().settings.accepted())
        result = services.order_record(partner=request.user, order=order)
        if result.status == "rejected":
            error = result.error
            if error["code"] == "order_exists":
                raise Conflict(error["message"], code=error["code"], fields=error["fields"])
            raise Invalid(error["message"], code=error["code"], fields=error["fields"])
        code, body = _order_answer(result)
        return Response(body, status=code)


class OrderBatchApi(APIView):
    scopes = {"POST": Scope.ACTIVITIES_WRITE}

    @extend_schema(
        operation_id="orders_batch", parameters=[IDEMPOTENCY], request=BatchInSerializer,
        responses={200: BatchOutSerializer, **ERRORS, **REPLAY_422},
        description=f"Up to {MAX_BATCH} orders. Each is reported on its own, in the order sent: accepted, "
        "duplicate, or rejected with the fields named. One bad order never sinks the others.",
    )
    @idempotent
    def post(self, request):
        raw = request.data.get("orders") if isinstance(request.data, dict) else None
        if not isinstance(raw, list) or not raw:
            raise Invalid("Send {\"orders\": [...]}.", fields={"orders": "A non-empty list of orders is required."})
        if len(raw) > MAX_BATCH:
            raise Invalid(f"At most {MAX_BATCH} orders per batch.", fields={"orders": f"At most {MAX_BATCH}."})
        accepted = current_program().settings.accepted()
        parsed, bodies = [], [None] * len(raw)
        for index, item in enumerate(raw):
            try:
                parsed.append((index, parse_order(item, accepted_currencies=accepted)))
            except Invalid as exc:
                ident = item if isinstance(item, dict) else {}
                bodies[index] = {"order_id": str(ident.get("order_id", "")), "member": str(ident.get("member", "")),
                                 "status": "rejected", "points": 0, "pending": False, "available_at": None,
                                 "expires_at": None, "rules": [],
                                 "error": {"code": exc.code, "message": exc.message, "fields": exc.fields}}
        results = services.orders_record(partner=request.user, orders=[order for _, order in parsed])
        for (index, _), result in zip(parsed, results, strict=True):
            bodies[index] = _order_body(result)
        counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
        for body in bodies:
            counts[body["status"]] += 1
        return Response({"accepted": counts["accepted"], "duplicates": counts["duplicate"],
                         "rejected": counts["rejected"], "results": bodies})


class RefundCreateApi(APIView):
    scopes = {"POST": Scope.ACTIVITIES_WRITE}

    @extend_schema(
        operation_id="orders_refund", parameters=[IDEMPOTENCY], request=RefundInSerializer,
        responses={201: RefundOutSerializer, 200: RefundOutSerializer, **ERRORS, **CONFLICT, **REPLAY_422},
        description="Refund an order in full (send only `refund_id`), by `amount`, or by `lines`. The points "
        "earned on the refunded part are reversed with the rules of the order's day.",
    )
    @idempotent
    def post(self, request, order_id: str):
        result = services.order_refund(partner=request.user, order_id=order_id, refund=parse_refund(request.data))
        body = {
            "refund_id": result.refund_id, "order_id": result.order_id, "status": result.status,
            "amount": money_str(result.amount, result.currency), "currency": result.currency,
            "points_reversed": result.points_reversed, "order_points": result.order_points,
            "order_status": result.order_status,
        }
        return Response(body, status=status.HTTP_201_CREATED if result.status == "accepted" else status.HTTP_200_OK)


class EventCreateApi(APIView):
    scopes = {"POST": Scope.ACTIVITIES_WRITE}

    @extend_schema(
        operation_id="events_create", parameters=[IDEMPOTENCY], request=EventInSerializer,
        responses={201: EventOutSerializer, 200: EventOutSerializer, **ERRORS, **CONFLICT, **REPLAY_422},
        description="A custom activity (`app_installed`, `social_share`...) for earning rules of that type.",
    )
    @idempotent
    def post(self, request):
        event = parse_event(request.data)
        result = services.event_record(partner=request.user, event=event)
        body = {"event_id": event.event_id, "type": event.type, "member": event.member,
                "status": "accepted" if result.created else "duplicate", "points": result.award.points,
                "rules": result.award.rules}
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class AdjustmentCreateApi(APIView):
    scopes = {"POST": Scope.POINTS_ADJUST}

    @extend_schema(
        operation_id="members_adjust", parameters=[IDEMPOTENCY], request=AdjustmentInSerializer,
        responses={201: AdjustmentOutSerializer, **ERRORS, **CONFLICT, **REPLAY_422},
        description="Credit or debit a member's points with a reason (customer service). Audited; a debit "
        "never takes more than is available (409).",
    )
    @idempotent
    def post(self, request, external_id: str):
        points, reason = parse_adjustment(request.data)
        member = member_for_partner(partner=request.user, external_id=external_id)
        entry = services.points_adjust(member=member, points=points, reason=reason, actor_partner=request.user)
        return Response({"entry_id": entry.pk, "points": points, "reason": reason, "balance": _balance(member)},
                        status=status.HTTP_201_CREATED)


class LedgerListApi(ListAPIView):
    scopes = {"GET": Scope.MEMBERS_READ}
    serializer_class = LedgerEntrySerializer
    filter_backends: list = []

    @extend_schema(
        operation_id="members_ledger",
        parameters=[OpenApiParameter("kind", str, enum=EntryKind.values, required=False)],
        responses={200: LedgerEntrySerializer(many=True), **ERRORS},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        member = member_for_partner(partner=self.request.user, external_id=self.kwargs["external_id"])
        kind = self.request.query_params.get("kind") or None
        if kind is not None and kind not in EntryKind.values:
            raise Invalid("Unknown kind.", fields={"kind": f"Choose one of {', '.join(EntryKind.values)}."})
        return selectors.with_source_partner(selectors.history(member=member, kind=kind))


class RewardListApi(ListAPIView):
    scopes = {"GET": Scope.REWARDS_READ}
    serializer_class = RewardSerializer
    filter_backends: list = []

    @extend_schema(
        operation_id="rewards_list",
        parameters=[OpenApiParameter("member", IDENTIFIER_SCHEMA["oneOf"][0], required=False,
                                     description="Your external_id: only rewards this member can redeem now.")],
        responses={200: RewardSerializer(many=True), **ERRORS},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        external_id = self.request.query_params.get("member")
        if external_id is not None and not is_identifier(external_id):
            raise Invalid(f"member must be {IDENTIFIER_RULE}.", fields={"member": f"Must be {IDENTIFIER_RULE}."})
        if external_id is not None:
            member = member_for_partner(partner=self.request.user, external_id=external_id)
            return selectors.redeemable_rewards(member=member)
        return [item.reward for item in selectors.catalog(member=None)]


class RedemptionCreateApi(APIView):
    scopes = {"POST": Scope.REWARDS_REDEEM}

    @extend_schema(
        operation_id="redemptions_create", parameters=[IDEMPOTENCY], request=RedemptionInSerializer,
        responses={201: RedemptionOutSerializer, **ERRORS, **CONFLICT, **REPLAY_422},
        description="Spend a member's points on a reward; the answer carries the coupon code.",
    )
    @idempotent
    def post(self, request):
        data = RedemptionInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = _member_from_body(request.user, data.validated_data["member"])
        reward = Reward.objects.filter(pk=data.validated_data["reward"]).first()
        if reward is None:
            raise Invalid("Unknown reward.", code="unknown_reward", fields={"reward": "No such reward."})
        redemption = services.reward_redeem(member=member, reward=reward, partner=request.user)
        body = {
            "id": redemption.pk, "member": data.validated_data["member"], "points": redemption.points,
            "reward": RewardSerializer(reward, context={"request": request}).data,
            "coupon": _coupon_body(redemption.coupon, partner=request.user, request=request),
            "balance": _balance(member),
        }
        return Response(body, status=status.HTTP_201_CREATED)


class CouponDetailApi(APIView):
    scopes = {"GET": Scope.REWARDS_REDEEM}

    @extend_schema(operation_id="coupons_retrieve", responses={200: CouponSerializer, **ERRORS})
    def get(self, request, code: str):
        coupon = Coupon.objects.select_related("reward").filter(
            code=services.normalize_coupon_code(code), member_id__in=partner_member_ids_query(request.user)).first()
        if coupon is None:
            raise NotFound("No such coupon.", code="unknown_coupon", fields={"code": "No such coupon."})
        return Response(_coupon_body(coupon, partner=request.user, request=request))


class CouponUseApi(APIView):
    scopes = {"POST": Scope.REWARDS_REDEEM}

    @extend_schema(
        operation_id="coupons_use", parameters=[IDEMPOTENCY], request=CouponUseInSerializer,
        responses={200: CouponSerializer, **ERRORS, **CONFLICT, **REPLAY_422},
        description="Mark the coupon used at checkout. It succeeds once; later calls get 409 `coupon_used`.",
    )
    @idempotent
    def post(self, request, code: str):
        data = CouponUseInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        coupon = services.coupon_use(code=code, partner=request.user, order_id=data.validated_data.get("order_id", ""))
        return Response(_coupon_body(coupon, partner=request.user, request=request))
