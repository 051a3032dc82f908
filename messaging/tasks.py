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


@shared_task(name="messaging.lifecycle")
def lifecycle() -> dict:
    """The hourly lifecycle messages; each acts only when it is due (in the program's time zone)
    and tells each member once, so running it more often, or late, is safe."""
    return {"points_digest": services.points_digest_send(), "anniversaries": services.anniversaries_send(),
            "post_purchase": services.post_purchase_send(), "statements": services.statements_send()}
