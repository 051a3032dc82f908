"""Facts about the HTTP request that depend on how the site is deployed."""

from django.conf import settings


def client_address(request) -> str:
    """The shopper's address. Behind ``TRUSTED_PROXY_COUNT`` proxies (a load balancer, HAProxy) it is
    the entry those proxies added to ``X-Forwarded-For``, counted from the right: anything further
    left was sent by the client and may be made up. With no proxy, ``REMOTE_ADDR``."""
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= trusted:
            return hops[-trusted]
    return request.META.get("REMOTE_ADDR", "")
