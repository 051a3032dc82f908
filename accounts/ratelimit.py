"""Rate limits per API key, shared by every web process through the cache (Redis in production).

A fixed window: each key may make ``N`` calls per second, minute, hour or day, counted with the
cache's atomic ``count`` (``core.cache``), so processes and machines sharing one Redis never let
more than ``N`` through in a window, however many there are. The window's start is the same for every process
(whole multiples of its length since the epoch). Every answer carries ``RateLimit-Limit``,
``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds until the window ends); a refusal is 429
with ``Retry-After``. A batch call counts once, like any call.
"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from core.rates import Rate, parse_rate


@dataclass(frozen=True)
class Window:
    limit: int
    remaining: int
    reset: int  # seconds until the window ends

    def headers(self) -> dict[str, str]:
        return {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                "RateLimit-Reset": str(self.reset)}


def rate_limit_take(*, key_id: int | str, rate: Rate, now: float | None = None) -> tuple[bool, Window]:
    """Count one call of key ``key_id``; whether it is allowed, and where its window stands."""
    now = time.time() if now is None else now
    index = int(now // rate.seconds)
    reset = max(1, int((index + 1) * rate.seconds - now + 0.999))
    name = f"ratelimit:{key_id}:{rate.seconds}:{index}"
    # Atomic in Redis and in-process, one round trip: processes sharing one Redis count together.
    used = cache.count(name, timeout=rate.seconds + 5)
    return used <= rate.calls, Window(rate.calls, max(0, rate.calls - used), reset)


class ApiKeyRateThrottle(BaseThrottle):
    """DRF's hook: the key's own rate, or ``API_RATE_LIMIT``. The window is kept on the request so
    that ``rate_limit_headers`` can put it on the answer, refusals and errors included."""

    def allow_request(self, request, view):
        key = request.auth
        if key is None or not hasattr(key, "rate_limit"):
            return True
        rate = parse_rate(key.rate_limit) if key.rate_limit else settings.API_RATE_LIMIT
        allowed, window = rate_limit_take(key_id=key.pk, rate=rate)
        request._request.rate_limit_window = window
        self._wait = window.reset
        return allowed

    def wait(self):
        return self._wait


def rate_limit_headers(get_response):
    """Middleware: copy the window of the call onto its answer."""

    def middleware(request):
        response = get_response(request)
        window = getattr(request, "rate_limit_window", None)
        if window is not None:
            for name, value in window.headers().items():
                response[name] = value
        return response

    return middleware
