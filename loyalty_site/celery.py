"""The Celery application.

Without ``CELERY_BROKER_URL`` tasks run eagerly in the calling process (the embedded default).
With a broker, tasks are acknowledged late, so a worker killed mid-task hands it to another;
every task is therefore written to be safe to run twice.
"""

import os
from contextlib import contextmanager, suppress

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")

app = Celery("loyalty_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@contextmanager
def tasks_inline():
    """Tasks run in the calling process while inside, whatever the broker, as without one; the
    setting the code reads (``CELERY_TASK_ALWAYS_EAGER``) says so too."""
    from django.conf import settings

    before = app.conf.task_always_eager, settings.CELERY_TASK_ALWAYS_EAGER
    app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER = True
    try:
        yield
    finally:
        app.conf.task_always_eager, settings.CELERY_TASK_ALWAYS_EAGER = before


def tasks_waiting(queues) -> int:
    """How many tasks wait in these queues of the broker (a queue nobody declared holds none)."""
    from amqp.exceptions import ChannelError

    waiting = 0
    with app.connection_for_write() as conn:
        for queue in queues:
            with suppress(ChannelError):
                waiting += conn.default_channel.queue_declare(queue, passive=True).message_count
    return waiting
