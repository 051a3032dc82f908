"""Partner API for webhooks (scope ``webhooks:manage``): endpoints, secrets, test pings, the
delivery log and replays. An endpoint belongs to the partner whose key created it; others get 404."""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.idempotency import IDEMPOTENCY, REPLAY_422, idempotent
from accounts.models import Scope
from accounts.schema import ERRORS, Text
from webhooks import selectors, services
from webhooks.models import WebhookAttempt, WebhookEndpoint
from webhooks.sending import URL_PATTERN, url_problem

EVENT_CHOICES = ["*", *services.PUBLIC_EVENTS]


@extend_schema_field({"type": "string", "pattern": URL_PATTERN, "maxLength": 500,
                      "description": "https:// (no private, loopback or link-local address)."})
class WebhookUrl(Text):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        problem = url_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


class EndpointInSerializer(serializers.Serializer):
    url = WebhookUrl(max_length=500)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES), min_length=1)
    description = Text(max_length=200, required=False, allow_blank=True)


class EndpointPatchSerializer(serializers.Serializer):
    url = WebhookUrl(max_length=500, required=False)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES), min_length=1,
                                   required=False)
    description = Text(max_length=200, required=False, allow_blank=True)
    active = serializers.BooleanField(required=False)


class EndpointOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "description", "active", "disabled_reason", "created_at"]


class EndpointCreatedSerializer(EndpointOutSerializer):
    secret = serializers.CharField(help_text="whsec_...: shown once.")

    class Meta(EndpointOutSerializer.Meta):
        fields = [*EndpointOutSerializer.Meta.fields, "secret"]


class SecretSerializer(serializers.Serializer):
    secret = serializers.CharField()


class AttemptSerializer(serializers.ModelSerializer):
    event_id = serializers.CharField(source="delivery.event_id")
    type = serializers.CharField(source="delivery.type")

    class Meta:
        model = WebhookAttempt
        fields = ["event_id", "type", "at", "status_code", "duration_ms", "error", "next_retry_at"]


class ReplayInSerializer(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Every event since this time is sent again, with its own id.")


class EndpointListSerializer(serializers.Serializer):
    results = EndpointOutSerializer(many=True)


class QueuedSerializer(serializers.Serializer):
    queued = serializers.IntegerField()


def _body(endpoint, secret=None) -> dict:
    data = EndpointOutSerializer(endpoint).data
    if secret:
        data["secret"] = secret
    return data


class EndpointListApi(APIView):
    scopes = {"GET": Scope.WEBHOOKS_MANAGE, "POST": Scope.WEBHOOKS_MANAGE}

    @extend_schema(operation_id="webhooks_list", responses={200: EndpointListSerializer, **ERRORS})
    def get(self, request):
        endpoints = WebhookEndpoint.objects.filter(partner=request.user)
        return Response({"results": EndpointOutSerializer(endpoints, many=True).data})

    @extend_schema(operation_id="webhooks_create", parameters=[IDEMPOTENCY], request=EndpointInSerializer,
                   responses={201: EndpointCreatedSerializer, **ERRORS, **REPLAY_422})
    @idempotent(secret_fields=("secret",))
    def post(self, request):
        data = EndpointInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = services.endpoint_create(partner=request.user, **data.validated_data)
        return Response(_body(endpoint, secret), status=status.HTTP_201_CREATED)


class EndpointDetailApi(APIView):
    scopes = {"GET": Scope.WEBHOOKS_MANAGE, "PATCH": Scope.WEBHOOKS_MANAGE, "DELETE": Scope.WEBHOOKS_MANAGE}

    @extend_schema(operation_id="webhooks_retrieve", responses={200: EndpointOutSerializer, **ERRORS})
    def get(self, request, endpoint_id: int):
        return Response(_body(selectors.endpoint_for_partner(partner=request.user, endpoint_id=endpoint_id)))

    @extend_schema(operation_id="webhooks_update", parameters=[IDEMPOTENCY], request=EndpointPatchSerializer,
                   responses={200: EndpointOutSerializer, **ERRORS, **REPLAY_422})
    @idempotent
    def patch(self, request, endpoint_id: int):
        endpoint = selectors.endpoint_for_partner(partner=request.user, endpoint_id=endpoint_id)
        data = EndpointPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(_body(services.endpoint_update(endpoint=endpoint, changes=dict(data.validated_data))))

    @extend_schema(operation_id="webhooks_delete", parameters=[IDEMPOTENCY],
                   responses={204: None, **ERRORS, **REPLAY_422})
    @idempotent
    def delete(self, request, endpoint_id: int):
        services.endpoint_delete(endpoint=selectors.endpoint_for_partner(partner=request.user, endpoint_id=endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RotateSecretApi(APIView):
    scopes = {"POST": Scope.WEBHOOKS_MANAGE}

    @extend_schema(operation_id="webhooks_rotate_secret", parameters=[IDEMPOTENCY], request=None,
                   responses={200: SecretSerializer, **ERRORS, **REPLAY_422},
                   description="A new secret, shown once; for 24 hours the old one signs too (two signatures).")
    @idempotent(secret_fields=("secret",))
    def post(self, request, endpoint_id: int):
        endpoint = selectors.endpoint_for_partner(partner=request.user, endpoint_id=endpoint_id)
        return Response({"secret": services.endpoint_rotate_secret(endpoint=endpoint)})


class TestApi(APIView):
    scopes = {"POST": Scope.WEBHOOKS_MANAGE}

    @extend_schema(operation_id="webhooks_test", parameters=[IDEMPOTENCY], request=None,
                   responses={202: QueuedSerializer, **ERRORS, **REPLAY_422}, description="Send a `ping` now.")
    @idempotent
    def post(self, request, endpoint_id: int):
        endpoint = selectors.endpoint_for_partner(partner=request.user, endpoint_id=endpoint_id)
        services.endpoint_ping(endpoint=endpoint)
        return Response({"queued": 1}, status=status.HTTP_202_ACCEPTED)


class DeliveriesApi(ListAPIView):
    scopes = {"GET": Scope.WEBHOOKS_MANAGE}
    serializer_class = AttemptSerializer
    filter_backends: list = []

    @extend_schema(operation_id="webhooks_deliveries", responses={200: AttemptSerializer(many=True), **ERRORS})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        endpoint = selectors.endpoint_for_partner(partner=self.request.user, endpoint_id=self.kwargs["endpoint_id"])
        return WebhookAttempt.objects.filter(endpoint=endpoint).select_related("delivery").order_by("-at", "-id")


class ReplayApi(APIView):
    scopes = {"POST": Scope.WEBHOOKS_MANAGE}

    @extend_schema(operation_id="webhooks_replay", parameters=[IDEMPOTENCY], request=ReplayInSerializer,
                   responses={202: QueuedSerializer, **ERRORS, **REPLAY_422})
    @idempotent
    def post(self, request, endpoint_id: int):
        endpoint = selectors.endpoint_for_partner(partner=request.user, endpoint_id=endpoint_id)
        data = ReplayInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        queued = services.replay(endpoint=endpoint, since=data.validated_data["since"])
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)
