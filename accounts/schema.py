from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`. Keys are created by staff and carry scopes.",
        }


class ErrorSerializer(serializers.Serializer):
    class ErrorBody(serializers.Serializer):
        code = serializers.CharField()
        message = serializers.CharField()
        fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))

    error = ErrorBody()


ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input; `fields` names each bad value."),
    401: OpenApiResponse(ErrorSerializer, description="Missing, unknown or revoked API key."),
    403: OpenApiResponse(ErrorSerializer, description="The key lacks the scope this call needs."),
    404: OpenApiResponse(ErrorSerializer, description="No such member or resource."),
}
