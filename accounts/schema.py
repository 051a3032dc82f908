from django.core.validators import RegexValidator
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import serializers

from core.text import (
    IDENTIFIER_PATTERN,
    IDENTIFIER_RULE,
    MAX_INTEGER_ID,
    MONEY_PATTERN,
    POSITIVE_MONEY_PATTERN,
    is_identifier,
)


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


# --- Fields whose schema says exactly what they accept -----------------------------------------
# DRF's own fields are lenient (a CharField takes 42, an IntegerField takes "42" and 42.0), so the
# published schema would refuse what the API accepts. These accept what their schema says, no more.

NONBLANK_PATTERN = r"[^ \t\n\r\f\v]"  # at least one character that is not a space (same in ECMA and Python)
IDENTIFIER_SCHEMA = {
    "oneOf": [
        {"type": "string", "pattern": IDENTIFIER_PATTERN, "minLength": 1, "maxLength": 100},
        {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER_ID, "description": "read as its digits"},
    ],
}


@extend_schema_field(IDENTIFIER_SCHEMA)
class Identifier(serializers.Field):
    """An id of the partner's own (customer, order, SKU): a string of 1 to 100 visible characters
    without '/', '?' or '#', or a whole number, which is read as its digits."""

    default_error_messages = {"invalid": f"Must be {IDENTIFIER_RULE}."}

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool) and 0 <= data <= MAX_INTEGER_ID:
            data = str(data)
        if not is_identifier(data):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class Text(serializers.CharField):
    """A string and nothing else; kept as sent (no trimming, so the schema's rules are the API's)."""

    default_error_messages = {"not_a_string": "Must be a string.",
                              "blank_only": "Must contain something other than spaces."}

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        if not self.allow_blank:
            self.validators.append(RegexValidator(NONBLANK_PATTERN, message=self.error_messages["blank_only"]))

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class WholeNumber(serializers.IntegerField):
    """A JSON integer; not "42", not 42.0, not true."""

    default_error_messages = {"not_an_integer": "Must be a whole number."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_an_integer")
        return super().to_internal_value(data)


@extend_schema_field({"oneOf": [{"type": "string", "pattern": POSITIVE_MONEY_PATTERN},
                                {"type": "number", "minimum": 0, "exclusiveMinimum": True,
                                 "maximum": 99_999_999_999.999}]})
class PositiveMoney(serializers.Field):
    """Schema only: a sum more than zero, as a decimal string or a JSON number."""

    def to_representation(self, value):
        return value


@extend_schema_field({"oneOf": [{"type": "string", "pattern": MONEY_PATTERN},
                                {"type": "number", "minimum": 0, "maximum": 99_999_999_999.999}]})
class Money(serializers.Field):
    """Schema only: a sum as a decimal string ("12.50"), or a JSON number (read as its decimal)."""

    def to_representation(self, value):
        return value


PAGE = OpenApiParameter("page", {"type": "integer", "minimum": 1}, required=False, description="From 1.")


_PATH_ID = {"type": "string", "pattern": IDENTIFIER_PATTERN, "minLength": 1, "maxLength": 100}
PATH_PARAMETERS = {
    "external_id": (_PATH_ID, "Your id for the customer."),
    "order_id": (_PATH_ID, "Your id for the order."),
    "sku": (_PATH_ID, "The product's SKU."),
    "code": ({"type": "string", "pattern": "^[A-Za-z0-9-]{1,40}$"}, "The coupon code (case and dashes do not matter)."),
}


def path_parameters_hook(result, generator, request, public):
    """drf-spectacular post-processing: every path parameter says what it accepts, once for all."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("name") in PATH_PARAMETERS:
                    schema, description = PATH_PARAMETERS[parameter["name"]]
                    parameter["schema"] = dict(schema)
                    parameter.setdefault("description", description)
    return result
