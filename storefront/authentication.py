"""Who calls the widget API: the store named by ``X-Store`` (its public key), from one of its
registered origins, and the shopper a customer token (``Authorization: Bearer``) names, if any.
No cookies: a shop's page can reach us only the way its own script says."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from rest_framework import authentication, exceptions, permissions
from rest_framework.throttling import BaseThrottle

from accounts.models import Member, Partner
from accounts.ratelimit import rate_limit_take
from accounts.selectors import member_for_partner
from core.errors import NotFound
from core.http import client_address
from storefront.models import StoreEmbed
from storefront.selectors import store_for_key, token_secrets
from storefront.tokens import TokenRefused, token_subject


@dataclass
class Shopper:
    """The request's store and, with a valid customer token, the member it names."""

    embed: StoreEmbed
    member: Member | None = None
    external_id: str = ""

    @property
    def partner(self) -> Partner:
        return self.embed.partner


class StoreAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        embed = store_for_key(request.headers.get("X-Store", ""))
        if embed is None or not embed.partner.is_active:
            raise exceptions.AuthenticationFailed("Unknown store: send the public key of data-store as X-Store.")
        origin = request.headers.get("Origin")
        if origin and origin not in embed.origins:
            # A page of another site using this store's public key: its browser would refuse our
            # answer anyway (CORS); the server refuses too, so nothing is done on its behalf.
            raise exceptions.PermissionDenied(f"{origin} is not one of this store's registered origins.")
        shopper = Shopper(embed)
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if header:
            if len(header) != 2 or header[0].lower() != "bearer":
                raise exceptions.AuthenticationFailed("Send the customer token as 'Authorization: Bearer <token>'.")
            try:
                external_id = token_subject(token=header[1], secrets=token_secrets(embed))
            except TokenRefused as exc:
                raise exceptions.AuthenticationFailed(str(exc)) from None
            try:
                shopper.member = member_for_partner(partner=embed.partner, external_id=external_id)
            except NotFound:
                raise exceptions.AuthenticationFailed(f"This store has no customer {external_id!r} in the program "
                                                      "yet (POST /api/v1/members/ first).") from None
            shopper.external_id = external_id
        return embed.partner, shopper

    def authenticate_header(self, request):
        return 'Bearer realm="embed"'


class ShopperSignedIn(permissions.BasePermission):
    message = "Sign in at the shop: this needs a customer token."

    def has_permission(self, request, view):
        if request.auth is None:
            return False
        if request.method in permissions.SAFE_METHODS and not getattr(view, "members_only", False):
            return True
        if request.auth.member is None:
            raise exceptions.NotAuthenticated(self.message)  # 401: a token would let them in
        return True


class StoreRateThrottle(BaseThrottle):
    """``EMBED_RATE_LIMIT`` calls per store and shopper's address (a busy shop has many shoppers;
    one script looping must not spend the others' share)."""

    def allow_request(self, request, view):
        shopper = request.auth
        if shopper is None:
            return True
        address = client_address(request)
        allowed, window = rate_limit_take(key_id=f"embed-{shopper.embed.pk}-{address}", rate=settings.EMBED_RATE_LIMIT)
        request._request.rate_limit_window = window
        self._wait = window.reset
        return allowed

    def wait(self):
        return self._wait
