"""Writes of the storefront embed: a partner's public key, its token secret and its shop origins."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AuditLog, Partner
from core.errors import Invalid
from core.secrets import secret_encrypt
from storefront.models import StoreEmbed
from storefront.origins import ORIGIN, origin_of
from storefront.selectors import stores

ROTATION_OVERLAP = timedelta(hours=24)
MAX_ORIGINS = 20


def store_embed_ensure(*, partner: Partner) -> StoreEmbed:
    """The partner's embed, made with a public key the first time it is asked for."""
    found = StoreEmbed.objects.filter(partner=partner).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            embed = StoreEmbed.objects.create(partner=partner, public_key="pk_live_" + secrets.token_urlsafe(18))
            AuditLog.objects.create(action="embed.created", actor_partner=partner, subject=f"embed:{embed.pk}")
            stores.changed()
            return embed
    except IntegrityError:  # two first calls at once: the other made it
        return StoreEmbed.objects.get(partner=partner)


def origin_clean(origin) -> str:
    """``https://shop.example.com[:port]`` as browsers send it (``storefront.origins``); plain http
    only for this machine (a shop in development); an internationalised host in its IDNA (xn--)
    form, as browsers send it. Raises ``ValueError`` saying what is wrong."""
    if not isinstance(origin, str) or len(origin) > 200 or not ORIGIN.match(origin):
        if isinstance(origin, str) and origin.startswith("http://") and ORIGIN.match("https://" + origin[7:]):
            raise ValueError("Shops are served over https; http is only allowed for localhost.")
        raise ValueError("An origin is https:// and a host name (xn-- for an international one), with an "
                         "optional port: https://shop.example.com.")
    return origin_of(origin)


def store_embed_origins_set(*, partner: Partner, origins) -> StoreEmbed:
    """Replace the shop origins whose pages may call the widget API."""
    if not isinstance(origins, list) or len(origins) > MAX_ORIGINS:
        raise Invalid("origins must be a list.", fields={"origins": f"A list of at most {MAX_ORIGINS} origins."})
    cleaned, problems = [], {}
    for index, origin in enumerate(origins):
        try:
            cleaned.append(origin_clean(origin))
        except ValueError as exc:
            problems[f"origins.{index}"] = str(exc)
    if problems:
        raise Invalid("Some origins are invalid.", fields=problems)
    embed = store_embed_ensure(partner=partner)
    with transaction.atomic():
        embed = StoreEmbed.objects.select_for_update().get(pk=embed.pk)
        before = list(embed.origins)
        embed.origins = sorted(set(cleaned))
        embed.save(update_fields=["origins", "updated_at"])
        AuditLog.objects.create(action="embed.origins_changed", actor_partner=partner, subject=f"embed:{embed.pk}",
                                before={"origins": before}, after={"origins": embed.origins})
        stores.changed()
    return embed


def store_embed_secret_rotate(*, partner: Partner, now: datetime | None = None) -> str:
    """A new token secret, returned once; tokens signed with the previous one are accepted for 24
    hours more, so a store can deploy the new secret without logging shoppers out."""
    now = now or timezone.now()
    secret = "sk_live_" + secrets.token_urlsafe(32)
    embed = store_embed_ensure(partner=partner)
    with transaction.atomic():
        embed = StoreEmbed.objects.select_for_update().get(pk=embed.pk)
        if embed.secret_encrypted:
            embed.previous_secret_encrypted = embed.secret_encrypted
            embed.previous_secret_until = now + ROTATION_OVERLAP
        embed.secret_encrypted = secret_encrypt(secret)
        embed.save(update_fields=["secret_encrypted", "previous_secret_encrypted", "previous_secret_until",
                                  "updated_at"])
        AuditLog.objects.create(action="embed.secret_rotated", actor_partner=partner, subject=f"embed:{embed.pk}")
        stores.changed()
    return secret
