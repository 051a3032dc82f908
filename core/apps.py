from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = _("Core")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from celery.signals import task_prerun
        from django.core.signals import request_started

        from core.process_cache import read_versions_again, read_versions_at_request_start

        # Each task sees every change committed before it began; each request, every change
        # committed 0.1 s before it began.
        request_started.connect(read_versions_at_request_start, dispatch_uid="core.process_cache.request")
        task_prerun.connect(read_versions_again, dispatch_uid="core.process_cache.task", weak=False)
