"""The Celery application.

Without ``CELERY_BROKER_URL`` tasks run eagerly in the calling process (the embedded default).
With a broker, tasks are acknowledged late, so a worker killed mid-task hands it to another;
every task is therefore written to be safe to run twice.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")

app = Celery("loyalty_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
