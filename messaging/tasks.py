from celery import shared_task

from messaging import services


@shared_task(name="messaging.send", acks_late=True)
def send(*, message_ids: list[int]) -> dict:
    return services.messages_send(message_ids=message_ids)


@shared_task(name="messaging.send_due")
def send_due() -> int:
    return services.messages_due()
