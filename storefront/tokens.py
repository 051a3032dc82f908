"""Customer tokens: HS256 JWTs a store's backend mints with its embed secret, ``sub`` the
customer's ``external_id`` at that store, ``iat`` and ``exp`` at most an hour later (PRODUCT.md,
"Storefront embed"). ``token_mint`` is what a store's backend does (the demo shop and the tests use
it; docs/embed.md shows it in Python, Node and PHP)."""

from __future__ import annotations

import time

import jwt

ALGORITHM = "HS256"
MAX_LIFETIME = 3600  # seconds from iat to exp
LEEWAY = 30  # clocks of the store and ours may differ a little


class TokenRefused(Exception):
    """Why a customer token is not accepted, in words a store's developer can act on."""


def token_mint(*, secret: str, external_id: str, lifetime: int = MAX_LIFETIME, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    return jwt.encode({"sub": external_id, "iat": issued, "exp": issued + lifetime}, secret, algorithm=ALGORITHM)


def token_subject(*, token: str, secrets: list[str], now: float | None = None) -> str:
    """The ``external_id`` a token names, if one of ``secrets`` signed it and it is in date."""
    if not secrets:
        raise TokenRefused("This store has no embed secret yet (POST /api/v1/embed/rotate-secret/).")
    now = time.time() if now is None else now
    claims = None
    for secret in secrets:
        try:
            claims = jwt.decode(token, secret, algorithms=[ALGORITHM], leeway=LEEWAY,
                                options={"require": ["sub", "iat", "exp"], "verify_iat": False})
            break
        except jwt.ExpiredSignatureError as exc:
            raise TokenRefused("The customer token has expired.") from exc
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidTokenError as exc:
            raise TokenRefused(f"The customer token is not valid: {str(exc).rstrip('.')}.") from exc
    if claims is None:
        raise TokenRefused("The customer token is not signed with this store's embed secret.")
    subject, issued, expires = claims["sub"], claims["iat"], claims["exp"]
    # Whole Unix seconds, as the standard writes them: NaN (which JSON parsers accept) or true would
    # make every comparison below false and let a token live for ever.
    if not isinstance(subject, str) or not subject or "\x00" in subject or len(subject) > 100 \
            or type(issued) is not int or type(expires) is not int:
        raise TokenRefused("sub must be the customer's external_id; iat and exp whole Unix seconds.")
    if issued > now + LEEWAY:
        raise TokenRefused("The customer token was issued in the future (iat).")
    if expires - issued > MAX_LIFETIME:
        raise TokenRefused(f"A customer token may live at most {MAX_LIFETIME} seconds (exp - iat).")
    return subject
