
from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.idempotency import IDEMPOTENCY, REPLAY_422, idempotent
from accounts.models import Channel, Scope
from accounts.schema import ERRORS, ErrorSerializer, Identifier, Text
from accounts.selectors import member_api_representation, member_for_partner
from accounts.services import check_birthday, member_erase, member_export, member_upsert_for_partner
from core.errors import DomainError
from feedback.services import referral_code_check, referral_link_reported

EMAIL_TAKEN = {409: OpenApiResponse(
    ErrorSerializer, description="`email_taken`: the email belongs to another member (another store's customer, "
    "or one you know under another external_id).")}


class ConsentsSerializer(serializers.Serializer):
    offers = serializers.ChoiceField(choices=Channel.choices, required=False)
    reminders = serializers.ChoiceField(choices=Channel.choices, required=False)
    surveys = serializers.ChoiceField(choices=Channel.choices, required=False)
    statements = serializers.ChoiceField(choices=Channel.choices, required=False,
                                         help_text="The monthly points statement (opt-in: none by default).")


class MemberInSerializer(serializers.Serializer):
    external_id = Identifier()
    email = serializers.EmailField(required=False, allow_blank=True)
    first_name = Text(max_length=100, required=False, allow_blank=True)
    last_name = Text(max_length=100, required=False, allow_blank=True)
    birthday = serializers.DateField(required=False, allow_null=True, help_text="From 1900-01-01 to today.")
    phone = Text(max_length=24, required=False, allow_blank=True,
                 help_text="With its country code (+441234567890); spaces, dashes and brackets are ignored.")
    consents = ConsentsSerializer(required=False)
    language = serializers.ChoiceField(
        choices=[code for code, _name in settings.LANGUAGES], required=False, allow_blank=True,
        help_text="The language the customer reads (en, de): the portal's and every message we send them. Empty: "
        "the program's (en).")
    referred_by_code = Text(
        max_length=20, required=False, allow_blank=True,
        help_text="The referral code the customer came with; linked when the member is new.")

    def validate_birthday(self, value):
        try:
            return check_birthday(value)
        except DomainError as exc:
            raise serializers.ValidationError(exc.message) from None


class PointsOutSerializer(serializers.Serializer):
    class Expiring(serializers.Serializer):
        points = serializers.IntegerField()
        expires_at = serializers.DateTimeField()

    available = serializers.IntegerField()
    pending = serializers.IntegerField()
    owed = serializers.IntegerField(help_text="Points a refund took back after they were spent.")
    expiring_soon = Expiring(many=True)


class MemberOutSerializer(MemberInSerializer):
    referred_by_code = None  # input only
    referral_code = serializers.CharField()
    member_since = serializers.DateTimeField()
    has_portal_login = serializers.BooleanField()
    points = PointsOutSerializer()
    tier = serializers.DictField(allow_null=True)
    badges = serializers.ListField(child=serializers.DictField())
    insights = serializers.DictField(
        allow_null=True, required=False,
        help_text="Only for keys with the insights:read scope: segment, p_alive, predicted_clv, "
        "expected_orders_90d, expected_orders_365d, orders, last_order_at, as_of (null before the first snapshot).")
    referral = serializers.DictField(required=False, help_text="When referred_by_code was sent: status, reason.")


class MemberUpsertApi(APIView):
    scopes = {"POST": Scope.MEMBERS_WRITE}

    @extend_schema(
        operation_id="members_upsert",
        parameters=[IDEMPOTENCY],
        request=MemberInSerializer,
        responses={200: MemberOutSerializer, 201: MemberOutSerializer, **ERRORS, **EMAIL_TAKEN, **REPLAY_422},
        description="Create or update the member you know as `external_id`. Only the fields you send "
        "change. A member who signed up in the portal with this email is linked to your id, not duplicated. "
        "An email that belongs to another store's customer is refused with 409 `email_taken` and nothing "
        "about that member is revealed, unless staff marked both partners as one store.",
    )
    @idempotent
    def post(self, request):
        serializer = MemberInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        external_id = data.pop("external_id")
        consents = data.pop("consents", {})
        code = data.pop("referred_by_code", "").strip()
        if code:
            referral_code_check(code=code, field="referred_by_code")  # an unknown code: 400, nothing saved
        member, created = member_upsert_for_partner(
            partner=request.user, external_id=external_id, data=data, consents=consents
        )
        body = member_api_representation(member=member, partner=request.user, external_id=external_id,
                                         scopes=request.auth.scopes)
        if code and created:
            body["referral"] = referral_link_reported(friend=member, code=code, source="api")
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class MemberDetailApi(APIView):
    scopes = {"GET": Scope.MEMBERS_READ}

    @extend_schema(operation_id="members_retrieve", responses={200: MemberOutSerializer, **ERRORS})
    def get(self, request, external_id: str):
        member = member_for_partner(partner=request.user, external_id=external_id)
        return Response(member_api_representation(member=member, partner=request.user, external_id=external_id,
                                                  scopes=request.auth.scopes))


class MemberExportApi(APIView):
    scopes = {"GET": Scope.MEMBERS_READ}

    @extend_schema(operation_id="members_export", responses={200: OpenApiTypes.OBJECT, **ERRORS},
                   description="Everything the program holds about this member, for a data access request (GDPR "
                   "art. 15) from a customer who never logged in to the portal. The request is audited.")
    def get(self, request, external_id: str):
        member = member_for_partner(partner=request.user, external_id=external_id)
        return Response(member_export(member=member, actor_partner=request.user))


class MemberEraseInSerializer(serializers.Serializer):
    reason = Text(max_length=500, required=False, allow_blank=True,
                                   help_text="Why, for the audit log (for example the ticket number).")


class MemberEraseOutSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    erased = serializers.BooleanField()
    erased_at = serializers.DateTimeField()


class MemberEraseApi(APIView):
    scopes = {"POST": Scope.MEMBERS_WRITE}

    @extend_schema(operation_id="members_erase", parameters=[IDEMPOTENCY], request=MemberEraseInSerializer,
                   responses={200: MemberEraseOutSerializer, **ERRORS, **REPLAY_422},
                   description="Erase this member's personal data (GDPR art. 17): email, names, phone, birthday, "
                   "every partner's customer id, consents and the portal login go; ledger, orders and balances stay "
                   "for the books. Afterwards the external_id is unknown (404). Audited.")
    @idempotent
    def post(self, request, external_id: str):
        data = MemberEraseInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = member_for_partner(partner=request.user, external_id=external_id)
        member = member_erase(member=member, actor_partner=request.user,
                              reason=data.validated_data.get("reason") or "erasure requested by the partner")
        return Response({"external_id": external_id, "erased": True, "erased_at": member.erased_at})
