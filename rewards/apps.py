from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = _("Points and rewards")

    def ready(self):
        from celery.signals import task_postrun

        from rewards.reactions import progress_checks

        # A task's progress checks leave with it: a worker's child process may exit without the
        # exit hooks a web process runs.
        task_postrun.connect(lambda **_: progress_checks.flush(), dispatch_uid="rewards.progress_checks", weak=False)
