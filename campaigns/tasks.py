from celery import shared_task

from campaigns import services


@shared_task(name="campaigns.run_due")
def run_due() -> dict:
    """Every running campaign's due occurrence (beat, hourly): how many entered each."""
    return {pk: result.entered for pk, result in services.campaigns_run_due().items()}
