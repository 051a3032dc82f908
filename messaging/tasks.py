from collections import Counter

from celery import shared_task

from messaging import services


@shared_task(name="messaging.send", acks_late=True)
def send(*, message_ids: list[int]) -> dict:
    """Send these messages (those due); how many had each outcome, for the log."""
    return dict(Counter(services.messages_send(message_ids=message_ids).values()))


@shared_task(name="messaging.send_due")
def send_due() -> int:
    return services.messages_due()


@shared_task(name="messaging.expiry_reminders")
def expiry_reminders() -> int:
    return services.expiry_reminders_send()


@shared_task(name="messaging.rewards_unlocked")
def rewards_unlocked() -> int:
    return services.rewards_unlocked_send()
