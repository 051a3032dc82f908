"""A member answers a survey in a real browser: the follow-up appears only for a low score, a
missing answer is shown next to its question, partial answers survive leaving the page."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from feedback.models import FollowUp, SurveyResponse
from tests.browser import chromium, page  # noqa: F401  (fixtures)
from tests.conftest import make_portal_member
from tests.factories import SurveyFactory, SurveyQuestionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_detractor_sees_the_follow_up_and_lands_on_the_follow_up_list(live_server, page):  # noqa: F811
    survey = SurveyFactory(name="How are we doing?", opens_at=timezone.now() - timedelta(days=1))
    nps = SurveyQuestionFactory(survey=survey, position=1, kind="nps", text="Would you recommend us?")
    SurveyQuestionFactory(survey=survey, position=2, kind="text", text="What could we do better?",
                                  show_if_question=nps, show_if_min=0, show_if_max=6)
    make_portal_member("alice@example.com", first_name="Alice")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_label("Password:", exact=True).fill("correct-horse-battery")
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("heading", name="Hello").wait_for()

    page.get_by_role("link", name="Surveys").click()
    page.get_by_role("link", name="Start").click()
    follow_up = page.get_by_label("What could we do better?")
    scale = page.get_by_role("radiogroup", name="Would you recommend us?")
    expect(scale).to_be_visible()
    expect(follow_up).to_be_hidden()
    scale.get_by_label("9", exact=True).check()
    expect(follow_up).to_be_hidden()
    scale.get_by_label("3", exact=True).check()
    expect(follow_up).to_be_visible()
    page.get_by_role("button", name="Save and finish later").click()
    page.get_by_text("Your answers are saved").wait_for()

    page.get_by_role("link", name="Continue").click()
    assert page.get_by_role("radiogroup", name="Would you recommend us?").get_by_label("3", exact=True).is_checked()
    page.get_by_role("button", name="Send answers").click()
    assert "Please answer this question." in page.locator(f"#q{nps.pk + 1}_error").inner_text()
    page.get_by_label("What could we do better?").fill("Faster delivery, please.")
    page.get_by_role("button", name="Send answers").click()
    page.get_by_text("We are sorry we let you down").wait_for()
    response = SurveyResponse.objects.get()
    assert (response.status, response.nps) == ("completed", 3)
    assert FollowUp.objects.get().comment == "Faster delivery, please."
