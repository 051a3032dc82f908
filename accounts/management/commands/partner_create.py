from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Scope
from accounts.services import api_key_create, partner_create
from core.errors import DomainError


class Command(BaseCommand):
    help = "Create a partner and an API key for it. The key is printed once, on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The partner's name, for example 'Tea Shop'.")
        parser.add_argument(
            "--scopes", required=True,
            help=f"Comma-separated scopes: {', '.join(Scope.values)}; or 'all'.",
        )
        parser.add_argument("--key-name", default="Created from the command line")
        parser.add_argument("--rate-limit", default="",
                            help="This key's own limit, for example 600/min; without it, API_RATE_LIMIT applies.")

    def handle(self, *args, name, scopes, key_name, rate_limit, **options):
        if scopes.strip() == "all":
            scope_list = list(Scope.values)
        else:
            scope_list = [s.strip() for s in scopes.split(",") if s.strip()]
        try:
            with transaction.atomic():
                partner = partner_create(name=name)
                key, raw = api_key_create(partner=partner, name=key_name, scopes=scope_list, rate_limit=rate_limit)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Partner {partner.name!r} created (id {partner.pk}).")
        self.stdout.write(f"API key {key.prefix}… with scopes: {', '.join(key.scopes)}; "
                          f"rate limit {key.rate_limit or 'default (API_RATE_LIMIT)'}.")
        self.stdout.write("Store the key below now; it is not shown again.")
        self.stdout.write(raw)
