"""Endpoint secrets: ``whsec_`` + base64 of 32 random bytes (the Standard Webhooks form), stored
encrypted (``core.secrets``)."""

import base64
import secrets

from core.secrets import secret_decrypt, secret_encrypt

__all__ = ["secret_decrypt", "secret_encrypt", "secret_new"]


def secret_new() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
