"""An outbox consumer for tests: remembers what it was handed, in this process."""

from core.models import OutboxEvent

received: list[tuple[str, str, int | None]] = []


def remember(*, event_ids) -> None:
    events = OutboxEvent.objects.filter(pk__in=event_ids).order_by("pk")
    received.extend((event.event_id, event.type, event.member_id) for event in events)
