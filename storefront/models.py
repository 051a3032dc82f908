"""A partner's storefront embed: its public key (``data-store``), the secret its backend signs
customer tokens with (encrypted at rest, like webhook secrets), and the shop origins allowed to call
the widget API from a browser."""

from django.db import models
from django.utils import timezone

from accounts.models import Partner


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
