from celery import shared_task

from webhooks import services


@shared_task(name="webhooks.deliver", acks_late=True)
def deliver(*, delivery_id: int | None = None, endpoint_id: int | None = None) -> str:
    """A try: of this delivery, or of the endpoint's next due one; then the endpoint's next ones."""
    return services.delivery_attempt(delivery_id=delivery_id, endpoint_id=endpoint_id,
                                     seconds=services.CHAIN_SECONDS)


@shared_task(name="webhooks.deliver_due")
def deliver_due() -> int:
    return services.deliveries_due()
