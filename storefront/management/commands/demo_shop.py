import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.demo import DEMO_PARTNERS
from accounts.models import Partner
from storefront.demo_shop import DemoShop


class Command(BaseCommand):
    help = "Serve a small demo shop that embeds the storefront widgets (make run starts it beside the portal)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--loyalty-url", default=settings.SITE_URL, help="Where Loyalty Loop is served.")

    def handle(self, *args, host, port, loyalty_url, **options):
        partner = Partner.objects.filter(name=DEMO_PARTNERS[0]).first()
        if partner is None or not hasattr(partner, "embed"):
            raise CommandError("No demo store: run `manage.py seed_demo` first.")
        url = DemoShop(partner=partner, customer="cust-demo", loyalty_url=loyalty_url).start(host=host, port=port)
        self.stdout.write(f"  demo shop:     {url}/  (the launcher, stars and reviews embedded from {loyalty_url})")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
