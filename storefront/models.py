"""A partner's storefront embed: its public key (``data-store``), the secret its backend signs
customer tokens with (encrypted at rest, like webhook secrets), and the shop origins allowed to call
the widget API from a browser."""

from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property

from accounts.models import Partner
from core.secrets import secret_decrypt


class StoreEmbed(models.Model):
    partner = models.OneToOneField(Partner, on_delete=models.CASCADE, related_name="embed")
    public_key = models.CharField(max_length=64, unique=True, help_text="pk_live_...: in the shop's page, public.")
    # Encrypted with SECRETS_ENCRYPTION_KEY (core.secrets): a database dump alone cannot mint tokens.
    secret_encrypted = models.TextField(blank=True)
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    origins = models.JSONField(default=list, blank=True,
                               help_text='Shop origins allowed to call the widgets\' API, e.g. ["https://shop.example.com"].')
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "storefront embed"

    def __str__(self):
        return f"{self.partner}: {self.public_key}"

    @cached_property
    def plain_secrets(self) -> tuple[str, str]:
        """The current and the previous token secret in the clear ("" for none), decrypted once per
        instance: each process keeps its stores' instances (``storefront.selectors.stores``) until
        one changes."""
        return tuple(secret_decrypt(value) if value else "" for value in (self.secret_encrypted,
                                                                          self.previous_secret_encrypted))
