from celery import shared_task

from webhooks import services


@shared_task(name="webhooks.deliver", acks_late=True)
def deliver(*, delivery_id: int) -> str:
    return services.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="webhooks.deliver_due")
def deliver_due() -> int:
    return services.deliveries_due()
