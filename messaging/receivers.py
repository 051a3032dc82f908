"""Reports from e-mail providers, as django-anymail hands them over."""

from messaging import services


def provider_reported(sender, event, esp_name, **kwargs):
    services.tracking_event(event_type=event.event_type, recipient=event.recipient or "",
                            description=f"{esp_name}: {event.description or event.reject_reason or ''}")
