import importlib
import logging
import random

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings

from accounts.demo import DEMO_MEMBER_EMAIL, DEMO_MEMBER_PASSWORD, DEMO_STAFF_EMAIL, DEMO_STAFF_PASSWORD


class Command(BaseCommand):
    help = "Fill the database with a believable demo program. Safe to run again: it adds only what is missing."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=settings.SITE_URL,
                            help="Where the portal is served, for the logins printed at the end (make run passes it).")

    def handle(self, *args, url, **options):
        # Demo shoppers are made up: what the program would email them is not sent anywhere.
        # Nor is every eager task it runs worth a log line.
        trace = logging.getLogger("celery.app.trace")
        level = trace.level
        trace.setLevel(logging.WARNING)
        try:
            # The messages are in the outbox (the admin's message log shows them), delivered nowhere.
            with override_settings(EMAIL_DELIVERY_BACKEND="django.core.mail.backends.dummy.EmailBackend",
                                   SMS_BACKEND="messaging.sms.MemoryBackend"):
                self._seed()
        finally:
            trace.setLevel(level)
        self.stdout.write(self.style.SUCCESS("Demo data is ready."))
        url = url.rstrip("/")
        self.stdout.write(f"  member portal: {DEMO_MEMBER_EMAIL} / {DEMO_MEMBER_PASSWORD}  ({url}/)")
        self.stdout.write(f"  staff admin:   {DEMO_STAFF_EMAIL} / {DEMO_STAFF_PASSWORD}  ({url}/admin/)")

    def _seed(self):
        rng = random.Random(20261123)
        context: dict = {}
        # Each app seeds its own part, in dependency order; later apps read what earlier ones made.
        for app in ("accounts", "rewards", "community", "feedback", "insights", "campaigns", "recommendations"):
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
