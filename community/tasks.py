"""Scheduled work of the community. Safe to run twice."""

from celery import shared_task

from community import services


@shared_task(name="community.send_review_requests")
def send_review_requests() -> int:
    return services.review_requests_send()
