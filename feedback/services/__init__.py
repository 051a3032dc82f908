"""Writes of feedback. The modules:

- ``surveys``: audiences, saving answers, points, follow-ups, invitations;
- ``referrals``: linking, fraud checks, conversion, rewards, voiding, approval, invitations.
"""

from feedback.services.referrals import (
    after_activities,
    device_of,
    email_pattern,
    identity_email,
    invitation_send,
    member_feedback_erase,
    pending_referral_link,
    referral_approve,
    referral_code_check,
    referral_link,
    referral_link_reported,
    referral_settings,
    referral_void,
    referrals_check,
    referrals_settle,
)
from feedback.services.surveys import (
    follow_up_handle,
    quiet_detractors,
    response_save,
    survey_invitations_send,
)

__all__ = [
    "after_activities", "device_of", "email_pattern", "follow_up_handle", "identity_email", "invitation_send",
    "member_feedback_erase", "pending_referral_link", "referral_code_check", "referral_link_reported",
    "quiet_detractors", "referral_approve", "referral_link", "referral_settings", "referral_void",
    "referrals_check", "referrals_settle", "response_save", "survey_invitations_send",
]
