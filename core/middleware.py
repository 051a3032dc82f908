"""Refuse what no view should ever see, before any view runs: NUL characters in the address or
the form fields (PostgreSQL cannot store them, and a view would answer 500), and API bodies over
the size limit (413 in the API's error shape, not an HTML page). The language of each page, and
its Content-Security-Policy. What serves browsers' pages only (the signed-in user, messages, the
policy) passed over by the partner API."""

from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.http import HttpResponseBadRequest, JsonResponse
from django.middleware.locale import LocaleMiddleware as DjangoLocaleMiddleware
from django.utils import translation
from django.utils.module_loading import import_string

from core.api import error_body, payload_too_large


def _has_nul(request) -> bool:
    if "\x00" in request.path_info:
        return True
    query = request.META.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query or b"\x00" in unquote_to_bytes(query):
        return True
    if request.method == "POST" and request.content_type in ("application/x-www-form-urlencoded",
                                                             "multipart/form-data"):
        try:
            return any("\x00" in key or any("\x00" in v for v in values) for key, values in request.POST.lists())
        except Exception:  # noqa: BLE001  a body Django cannot read is refused by its own view later
            return False
    return False


def request_guard(get_response):
    def middleware(request):
        # The partner API and the storefront widgets' API answer in the error shape.
        is_api = request.path_info.startswith(("/api/", "/embed/v1/"))
        if _has_nul(request):
            if is_api:
                return JsonResponse(error_body("invalid", "NUL characters are not allowed in a request.",
                                               {"non_field_errors": ["NUL characters are not allowed."]}), status=400)
            return HttpResponseBadRequest("NUL characters are not allowed in a request.", content_type="text/plain")
        if is_api:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                return payload_too_large()
        return get_response(request)

    return middleware


SESSION_LANGUAGE = "member_language"  # a signed-in member's own language, put in their session at log-in


class LocaleMiddleware(DjangoLocaleMiddleware):
    """Django's choice of language (the switcher's cookie, else the browser's Accept-Language),
    with two rules of ours: a signed-in member's own language (kept in their session) comes before
    the browser's, and the partner API always answers in the program's language, English: its
    messages are part of the contract partners code against."""

    def process_request(self, request):
        if request.path_info.startswith("/api/"):
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = settings.LANGUAGE_CODE
            return
        session = getattr(request, "session", None)
        own = session.get(SESSION_LANGUAGE) if session is not None and session.session_key else None
        if own and not request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) and translation.check_for_language(own):
            translation.activate(own)
            request.LANGUAGE_CODE = translation.get_language()
            return
        super().process_request(request)

    def process_response(self, request, response):
        if request.path_info.startswith("/api/"):
            # Always English, whatever Accept-Language says: no Vary on it (caches may share answers).
            response.headers.setdefault("Content-Language", settings.LANGUAGE_CODE)
            return response
        return super().process_response(request, response)


# The partner API's answers: JSON for partners' servers, which no browser shows as a page.
PARTNER_API = "/api/v1/"


def _pages_only(path: str):
    """The middleware at ``path`` for everything but the partner API, whose callers are partners'
    servers signed in by key (``accounts.authentication``: DRF finds the caller itself), with no
    session, flash message or page. A subclass, so that Django's checks still find it. (Sessions and
    CSRF keep to every path: Django's deploy checks look for them by name; they cost little here.)"""
    inner_class = import_string(path)

    class PagesOnly(inner_class):
        def __call__(self, request):
            if request.path_info.startswith(PARTNER_API):
                return self.get_response(request)
            return super().__call__(request)

    PagesOnly.__name__ = PagesOnly.__qualname__ = inner_class.__name__
    PagesOnly.__module__ = __name__
    return PagesOnly


# The signed-in user and flash messages: 0.02 ms of a single order's 0.7 ms of Python, measured.
AuthenticationMiddleware = _pages_only("django.contrib.auth.middleware.AuthenticationMiddleware")
MessageMiddleware = _pages_only("django.contrib.messages.middleware.MessageMiddleware")
# django-csp's header on every page, but not on the partner API's JSON: a policy says what a page
# may load and run, and these answers are no page. django-csp builds the policy for every answer
# before it looks at what it excludes (0.17 ms of a single order's 2.4 ms of Python, measured).
# The API's docs page (``/api/docs/``) is a page and keeps its policy.
CSPMiddleware = _pages_only("csp.middleware.CSPMiddleware")
