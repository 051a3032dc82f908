"""Partner authentication: ``Authorization: Api-Key <key>``, and scopes per endpoint.

Each process remembers the keys it looked up (one query fewer on every call) until any key or
partner changes: revoking a key, changing its limit, pausing a partner calls
``accounts.services.api_keys_changed``, and every process looks keys up again within 0.1 s
(``core.process_cache``).
"""

from rest_framework import authentication, exceptions, permissions

from accounts.models import ApiKey
from accounts.services import api_key_touch, hash_api_key
from core.process_cache import ProcessCopy

KEYWORD = "Api-Key"
# digest -> the key (None: no such key), for as long as no key or partner changes.
_keys: ProcessCopy[dict[str, ApiKey | None]] = ProcessCopy("api-keys", dict)


def _lookup(digest: str) -> ApiKey | None:
    keys = _keys.get()
    if digest in keys:
        return keys[digest]
    key = ApiKey.objects.select_related("partner").filter(key_hash=digest).first()
    if len(keys) > 10_000:  # a flood of made-up keys must not grow memory without bound
        keys.clear()
    keys[digest] = key
    return key


def api_keys_changed() -> None:
    _keys.changed()


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
