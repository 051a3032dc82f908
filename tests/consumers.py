"""An outbox consumer for tests: remembers what it was handed, in this process."""

received: list[tuple[str, str, int | None]] = []


def remember(*, events) -> None:
    received.extend((event.event_id, event.type, event.member_id) for event in events)
