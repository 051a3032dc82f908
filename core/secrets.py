"""Secrets we must be able to read back (webhook signing secrets, storefront token secrets) are
stored encrypted (Fernet) with ``SECRETS_ENCRYPTION_KEY`` (or, as before, ``WEBHOOK_SECRETS_KEY``)
or, by default, a key derived from ``SECRET_KEY``: a copy of the database alone does not let anyone
sign a delivery or mint a customer token."""

import base64
import hashlib

from cryptography.fernet import Fernet
from django.conf import settings


def _fernet() -> Fernet:
    key = settings.SECRETS_ENCRYPTION_KEY or base64.urlsafe_b64encode(
        hashlib.sha256(f"webhook-secrets:{settings.SECRET_KEY}".encode()).digest()).decode()
    return Fernet(key)


def secret_encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def secret_decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()
