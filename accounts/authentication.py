"""Partner authentication: ``Authorization: Api-Key <key>``, and scopes per endpoint.

Each process remembers a key it looked up for ``KEY_CACHE_SECONDS`` (5 s): one query fewer on
every call. Revoking a key or pausing a partner forgets it at once in the process that did it; other
processes stop accepting it within those 5 seconds.
"""

import threading
import time

from rest_framework import authentication, exceptions, permissions

from accounts.models import ApiKey
from accounts.services import api_key_touch, hash_api_key

KEYWORD = "Api-Key"
KEY_CACHE_SECONDS = 5.0
_cache: dict[str, tuple[float, ApiKey | None]] = {}
_cache_lock = threading.Lock()


def _lookup(digest: str) -> ApiKey | None:
    now = time.monotonic()
    hit = _cache.get(digest)
    if hit is not None and now - hit[0] < KEY_CACHE_SECONDS:
        return hit[1]
    key = ApiKey.objects.select_related("partner").filter(key_hash=digest).first()
    with _cache_lock:
        if len(_cache) > 10_000:  # a flood of made-up keys must not grow memory without bound
            _cache.clear()
        _cache[digest] = (now, key)
    return key


def forget_api_keys() -> None:
    with _cache_lock:
        _cache.clear()



class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Resolve the key by its SHA-256; a revoked key or a paused partner is refused (401)."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0] != KEYWORD:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header; use 'Api-Key <key>'.")
        key = _lookup(hash_api_key(header[1]))
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown API key.")
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if not key.partner.is_active:
            raise exceptions.AuthenticationFailed("This partner is paused.")
        api_key_touch(api_key=key)
        return key.partner, key

    def authenticate_header(self, request):
        return f'{KEYWORD} realm="api"'


class HasScope(permissions.BasePermission):
    """The key must carry the scope the view names for this method in ``scopes``."""

    def has_permission(self, request, view):
        if request.auth is None:
            return False
        if request.method.lower() not in view.http_method_names or not hasattr(view, request.method.lower()):
            return True  # DRF answers 405 Method Not Allowed next
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        scope = getattr(view, "scopes", {}).get(method)
        if scope is None:
            # A method without a declared scope is not for partners at all.
            self.message = "No scope allows this method here."
            return False
        if scope not in request.auth.scopes:
            self.message = f"This API key lacks the '{scope}' scope."
            return False
        return True
