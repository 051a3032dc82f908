import importlib
import logging
import random

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings

from accounts.demo import DEMO_MEMBER_EMAIL, DEMO_MEMBER_PASSWORD, DEMO_STAFF_EMAIL, DEMO_STAFF_PASSWORD
from loyalty_site.celery import tasks_inline


class Command(BaseCommand):
    help = "Fill the database with a believable demo program. Safe to run again: it adds only what is missing."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=settings.SITE_URL,
                            help="Where the portal is served, for the logins printed at the end (make run passes it).")
        parser.add_argument("--shop-url", default="http://127.0.0.1:8001",
                            help="Where the demo shop is served (its origin may call the widget API).")

    def handle(self, *args, url, shop_url, **options):
        # Demo shoppers are made up: what the program would email them is not sent anywhere.
        # Nor is every eager task it runs worth a log line.
        trace = logging.getLogger("celery.app.trace")
        level = trace.level
        trace.setLevel(logging.WARNING)
        # Tasks run inline while it seeds, as under `make run`, whatever the broker: the demo is
        # whole when the command returns, and no worker checks members' progress beside it. Each
        # app seeds in one transaction that takes members in no set order; a worker locking the
        # members of the last app's orders at the same time deadlocked with it (CI on PostgreSQL).
        try:
            # The messages are in the outbox (the admin's message log shows them), delivered nowhere.
            with tasks_inline(), override_settings(
                    EMAIL_DELIVERY_BACKEND="django.core.mail.backends.dummy.EmailBackend",
                    SMS_BACKEND="messaging.sms.MemoryBackend"):
                self._seed(shop_url=shop_url.rstrip("/"))
        finally:
            trace.setLevel(level)
        self.stdout.write(self.style.SUCCESS("Demo data is ready."))
        url = url.rstrip("/")
        self.stdout.write(f"  member portal: {DEMO_MEMBER_EMAIL} / {DEMO_MEMBER_PASSWORD}  ({url}/)")
        self.stdout.write(f"  staff admin:   {DEMO_STAFF_EMAIL} / {DEMO_STAFF_PASSWORD}  ({url}/admin/)")

    def _seed(self, *, shop_url: str):
        rng = random.Random(20261123)
        context: dict = {"shop_origins": [shop_url, shop_url.replace("://127.0.0.1:", "://localhost:")]}
        # Each app seeds its own part, in dependency order; later apps read what earlier ones made.
        for app in ("accounts", "rewards", "community", "feedback", "insights", "campaigns", "recommendations",
                    "storefront"):
            if app not in settings.INSTALLED_APPS:
                continue
            try:
                module = importlib.import_module(f"{app}.demo")
            except ModuleNotFoundError as exc:
                if exc.name != f"{app}.demo":
                    raise
                continue
            with transaction.atomic():
                context.update(module.seed(rng=rng, stdout=self.stdout, context=context) or {})
            self.stdout.write(f"  seeded {app}")
