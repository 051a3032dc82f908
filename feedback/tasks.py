"""Scheduled and queued work of feedback. Each task is safe to run twice."""

from celery import shared_task

from feedback import services


@shared_task(name="feedback.check_referrals")
def check_referrals(friend_ids: list[int]) -> int:
    return services.referrals_check(friend_ids=friend_ids)


@shared_task(name="feedback.settle_referrals")
def settle_referrals() -> int:
    return services.referrals_settle()


@shared_task(name="feedback.send_survey_invitations")
def send_survey_invitations() -> int:
    return services.survey_invitations_send()
