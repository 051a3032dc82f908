"""Endpoint secrets: ``whsec_`` + base64 of 32 random bytes (the Standard Webhooks form), stored
encrypted (Fernet) with a key from ``WEBHOOK_SECRETS_KEY`` or, by default, derived from
``SECRET_KEY``: a copy of the database alone does not let anyone sign a delivery."""

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet
from django.conf import settings


def _fernet() -> Fernet:
    key = settings.WEBHOOK_SECRETS_KEY or base64.urlsafe_b64encode(
        hashlib.sha256(f"webhook-secrets:{settings.SECRET_KEY}".encode()).digest()).decode()
    return Fernet(key)


def secret_new() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def secret_decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()
