"""Plumbing shared by every partner API endpoint: the error shape and pagination.

Every error leaves as ``{"error": {"code": ..., "message": ..., "fields": {...}}}``. ``fields``
maps a dotted path (``lines.1.quantity``) to its messages, so a partner can point at the exact
value that was refused.
"""

import json

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, negotiation, parsers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from core import errors
from core.text import has_nul


class ApiError(exceptions.APIException):
    """A refusal with its own HTTP status and machine-readable code."""

    def __init__(self, *, status_code: int, code: str, message: str, fields: dict | None = None):
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.message = message
        self.fields = fields or {}


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into ``{"lines.1.quantity": ["..."]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "non_field_errors" if key == "non_field_errors" and not prefix else key
            path = f"{prefix}.{name}" if prefix else str(name)
            out.update(flatten_errors(value, path))
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                if item:
                    out.update(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


_CODES = {
    exceptions.ParseError: ("malformed_json", None),
    exceptions.NotAuthenticated: ("not_authenticated", None),
    exceptions.AuthenticationFailed: ("authentication_failed", None),
    exceptions.PermissionDenied: ("permission_denied", None),
    exceptions.NotFound: ("not_found", None),
    exceptions.MethodNotAllowed: ("method_not_allowed", None),
    exceptions.NotAcceptable: ("not_acceptable", None),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", None),
}


_DOMAIN_STATUS = {
    errors.Invalid: status.HTTP_400_BAD_REQUEST,
    errors.NotFound: status.HTTP_404_NOT_FOUND,
    errors.Conflict: status.HTTP_409_CONFLICT,
    errors.Unprocessable: status.HTTP_422_UNPROCESSABLE_ENTITY,
}


def exception_handler(exc, context):
    if isinstance(exc, errors.DomainError):
        status_code = next((s for cls, s in _DOMAIN_STATUS.items() if isinstance(exc, cls)), 400)
        return Response(error_body(exc.code, exc.message, exc.fields), status=status_code)
    if isinstance(exc, RequestDataTooBig):
        return Response(_too_large_body(), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, TooManyFieldsSent):
        return Response(error_body("too_many_fields", f"At most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,} "
                                   "parameters or fields in a request."), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, ApiError):
        body = error_body(exc.error_code, exc.message, exc.fields)
    elif isinstance(exc, exceptions.Throttled):
        body = error_body("rate_limited", f"Too many calls with this API key; try again in {int(exc.wait or 1)} s.")
    elif isinstance(exc, exceptions.ValidationError):
        body = error_body("invalid", "Some fields are invalid.", flatten_errors(exc.detail))
    else:
        code = next((c for cls, (c, _) in _CODES.items() if isinstance(exc, cls)), "error")
        body = error_body(code, str(exc.detail))
    if isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
        # DRF downgrades 401 to 403 when no WWW-Authenticate header is offered; always offer it.
        headers.setdefault("WWW-Authenticate", 'Api-Key realm="api"')
    return Response(body, status=exc.status_code, headers=headers)


@csrf_exempt  # a POST to a path that does not exist is a 404, not a CSRF refusal
def json_not_found(request, exception=None):
    return JsonResponse(error_body("not_found", "No such resource."), status=status.HTTP_404_NOT_FOUND)


def json_server_error(request):
    return JsonResponse(
        error_body("server_error", "Something went wrong on our side; it has been logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


MAX_JSON_DEPTH = 32


def _check_json(value, path: str = "") -> None:
    """Refuse nesting deeper than ``MAX_JSON_DEPTH`` and NUL characters (PostgreSQL cannot store
    them in text), naming the place. Iterative: depth is what is being checked."""
    stack = [(value, path, 1)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ApiError(status_code=400, code="too_deep", message=f"JSON nested deeper than {MAX_JSON_DEPTH}.",
                           fields={where or "non_field_errors": [f"Nested deeper than {MAX_JSON_DEPTH} levels."]})
        if isinstance(item, str):
            if has_nul(item):
                raise ApiError(status_code=400, code="invalid", message="Some fields are invalid.",
                               fields={where or "non_field_errors": ["NUL characters are not allowed."]})
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{where}.{key}" if where else str(key)
                if has_nul(key):
                    raise ApiError(status_code=400, code="invalid", message="Some fields are invalid.",
                                   fields={where or "non_field_errors": ["NUL characters are not allowed in keys."]})
                stack.append((child, name, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where}.{index}" if where else str(index), depth + 1)
                         for index, child in enumerate(item))


class StrictJSONParser(parsers.JSONParser):
    """JSON that is UTF-8, at most 32 deep, with no NUL anywhere: anything else is a 400 naming the place.

    The standard parser lets a NUL through (a 500 when it reaches PostgreSQL) and lets a
    RecursionError from deep nesting become a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.ParseError("The body is not valid UTF-8.") from None
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            # Nested past Python's own limit (about a thousand): refused like any depth over 32.
            raise ApiError(status_code=400, code="too_deep", message=f"JSON nested deeper than {MAX_JSON_DEPTH}.",
                           fields={"non_field_errors": [f"Nested deeper than {MAX_JSON_DEPTH} levels."]}) from None
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error: {exc.__class__.__name__} at character "
                                        f"{getattr(exc, 'pos', '?')}.") from None
        # A NUL can only arrive escaped (raw control characters are not JSON), and nesting needs a
        # bracket per level: a body with neither (a single order) is not walked (1.5% of its cost).
        if "\\u0000" in text or text.count("{") + text.count("[") > MAX_JSON_DEPTH:
            _check_json(data)
        return data


class Negotiation(negotiation.DefaultContentNegotiation):
    """DRF's, with its commonest question answered first: the API speaks JSON only, and a call that
    accepts anything or JSON gets JSON without its Accept header parsed (2% of a single order's
    Python). Anything else (another type, ``?format=``) goes the usual way: 406 for what we lack."""

    def select_renderer(self, request, renderers, format_suffix=None):
        if (len(renderers) == 1 and not format_suffix
                and request.META.get("HTTP_ACCEPT", "*/*") in ("*/*", renderers[0].media_type)
                and self.settings.URL_FORMAT_OVERRIDE not in request.query_params):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _too_large_body() -> dict:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error_body("payload_too_large", f"The body is larger than {limit:,} bytes.",
                      {"body": [f"At most {limit:,} bytes."]})


def payload_too_large() -> JsonResponse:
    return JsonResponse(_too_large_body(), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)


def whole_number(value: str, field: str, low: int, high: int | None) -> int:
    """A query parameter that must be a whole number from ``low`` (to ``high``): a 400 naming it otherwise."""
    number = int(value) if value.isascii() and value.isdigit() else low - 1
    if number < low or (high is not None and number > high):
        bound = f"from {low} to {high}" if high else f"from {low}"
        raise errors.Invalid(f"{field} must be a whole number {bound}.", fields={field: f"A whole number {bound}."})
    return number


class Pagination(PageNumberPagination):
    """Pages of 50 by default; ``page_size`` from 1 to 500, anything else is a 400 naming it (DRF
    would quietly use the default, and the schema would promise what the API does not do)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        page = request.query_params.get(self.page_query_param)
        if page is not None and not (page.isascii() and page.isdigit() and int(page) >= 1):
            raise ApiError(status_code=400, code="invalid", message="Some fields are invalid.",
                           fields={"page": ["A whole number from 1."]})
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise ApiError(status_code=400, code="invalid", message="Some fields are invalid.",
                           fields={"page_size": [f"A whole number from 1 to {self.max_page_size}."]})
        return int(raw)

    def get_schema_operation_parameters(self, view):
        return [
            {"name": self.page_query_param, "in": "query", "required": False, "description": "From 1.",
             "schema": {"type": "integer", "minimum": 1}},
            {"name": self.page_size_query_param, "in": "query", "required": False,
             "description": f"From 1 to {self.max_page_size}; {self.page_size} by default.",
             "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size}},
        ]
