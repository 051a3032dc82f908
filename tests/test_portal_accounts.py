import json
import re
from datetime import date

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse

from accounts.models import AuditLog, Channel, ConsentEvent, Member, User
from accounts.services import member_upsert_for_partner

PASSWORD = "a-long-and-unusual-passphrase"


def _signup(client, email, password=PASSWORD):
    return client.post(reverse("account_signup"), {"email": email, "password1": password, "password2": password})


def _confirmation_link(message) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+/)", message.body).group(1)


@pytest.mark.django_db
def test_signup_sends_a_verification_link_that_logs_the_shopper_in(client, mailoutbox):
    response = _signup(client, "Carol@Example.com")
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["carol@example.com"]

    # Before verifying, the dashboard is out of reach.
    assert client.get(reverse("dashboard")).status_code == 302
    assert Member.objects.count() == 0

    link = _confirmation_link(mailoutbox[0])
    page = client.get(link)
    assert page.status_code == 200 and b"Confirm" in page.content
    response = client.post(link)
    assert response.status_code == 302

    dashboard = client.get(reverse("dashboard"))
    assert dashboard.status_code == 200
    member = Member.objects.get()
    assert member.email == "carol@example.com"
    assert member.user.email == "carol@example.com"
    assert re.match(r"^LL-[2-9A-Z]{4}$", member.referral_code)


@pytest.mark.django_db
def test_unverified_shopper_cannot_log_in(client):
    _signup(client, "dan@example.com")
    client.logout()
    response = client.post(reverse("account_login"), {"login": "dan@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert client.get(reverse("dashboard")).status_code == 302


@pytest.mark.django_db
def test_signup_with_a_taken_email_tells_the_owner_and_creates_nobody(client, alice, mailoutbox):
    # The page does not reveal that the address is taken (no account enumeration); the owner
    # gets an email saying someone tried to sign up with it.
    response = _signup(client, "ALICE@example.com")
    assert response.status_code == 302
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1
    assert Member.objects.count() == 1
    assert mailoutbox[0].to == ["alice@example.com"]
    assert "already" in mailoutbox[0].body


@pytest.mark.django_db
def test_member_created_by_partner_becomes_the_same_member_after_signup(client, tea_shop, mailoutbox):
    partner_member, _ = member_upsert_for_partner(
        partner=tea_shop, external_id="cust-42", data={"email": "ada@example.com", "first_name": "Ada"}
    )
    _signup(client, "ada@example.com")
    client.post(_confirmation_link(mailoutbox[0]))

    assert Member.objects.count() == 1
    partner_member.refresh_from_db()
    assert partner_member.user.email == "ada@example.com"
    assert partner_member.first_name == "Ada"
    assert client.get(reverse("dashboard")).context["member"].pk == partner_member.pk


@pytest.mark.django_db
def test_signup_without_verification_does_not_claim_a_partner_member(client, tea_shop):
    partner_member, _ = member_upsert_for_partner(
        partner=tea_shop, external_id="cust-42", data={"email": "ada@example.com"}
    )
    _signup(client, "ada@example.com")
    partner_member.refresh_from_db()
    assert partner_member.user is None


@pytest.mark.django_db
def test_password_reset_by_email(client, alice, mailoutbox):
    client.post(reverse("account_reset_password"), {"email": "alice@example.com"})
    assert len(mailoutbox) == 1
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/[^\s]+/)", mailoutbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    response = client.post(form_page.redirect_chain[-1][0] if form_page.redirect_chain else link,
                           {"password1": "brand-new-passphrase-9", "password2": "brand-new-passphrase-9"})
    assert response.status_code == 302
    client.logout()
    client.post(reverse("account_login"), {"login": "alice@example.com", "password": "brand-new-passphrase-9"})
    assert client.get(reverse("dashboard")).status_code == 200


@pytest.mark.django_db
def test_login_is_throttled_after_five_failed_attempts_for_one_account(client, alice):
    for _ in range(5):
        response = client.post(reverse("account_login"), {"login": "alice@example.com", "password": "wrong"})
        assert response.status_code == 200
        assert client.get(reverse("dashboard")).status_code == 302
    # The right password no longer works until the window passes.
    response = client.post(
        reverse("account_login"), {"login": "alice@example.com", "password": "correct-horse-battery"}
    )
    assert b"Too many failed login attempts" in response.content
    assert client.get(reverse("dashboard")).status_code == 302


@pytest.mark.django_db
def test_login_with_the_right_password_reaches_the_dashboard(client, alice):
    credentials = {"login": "ALICE@example.com", "password": "correct-horse-battery"}
    response = client.post(reverse("account_login"), credentials)
    assert response.status_code == 302
    page = client.get(reverse("dashboard"))
    assert page.status_code == 200
    assert b"Hello, Alice" in page.content


def _profile_data(**overrides):
    data = {
        "first_name": "Alice", "last_name": "Archer", "birthday": "1991-04-02", "phone": "+44 20 7946 0958",
        "offers_channel": "email", "reminders_channel": "sms", "surveys_channel": "none", "statements_channel": "email",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_member_edits_profile_and_preferences(alice_client, alice):
    response = alice_client.post(reverse("accounts:profile"), _profile_data())
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.birthday == date(1991, 4, 2)
    assert alice.phone == "+442079460958"
    assert (alice.offers_channel, alice.reminders_channel, alice.surveys_channel) == ("email", "sms", "none")
    logged = {(e.purpose, e.channel, e.source) for e in ConsentEvent.objects.filter(member=alice)}
    assert logged == {("offers", "email", "portal"), ("reminders", "sms", "portal"), ("statements", "email", "portal")}
    page = alice_client.get(reverse("accounts:profile"))
    assert b"Your profile is saved." in page.content


@pytest.mark.django_db
def test_bad_phone_is_reported_next_to_the_phone_field(alice_client, alice):
    response = alice_client.post(reverse("accounts:profile"), _profile_data(phone="12345"))
    assert response.status_code == 200
    assert response.context["form"].errors["phone"] == [
        "Enter the number with its country code, for example +441234567890."
    ]
    html = response.content.decode()
    assert html.index('id="id_phone_error"') < html.index("How may we contact you?")
    alice.refresh_from_db()
    assert alice.phone == ""


@pytest.mark.django_db
def test_a_birthday_in_the_future_is_refused_next_to_the_field_in_the_portal_and_the_admin(alice_client, alice,
                                                                                           staff):
    response = alice_client.post(reverse("accounts:profile"), _profile_data(birthday="2099-01-01"))
    assert response.status_code == 200
    assert response.context["form"].errors["birthday"] == ["Must be a date between 1900-01-01 and today."]
    assert 'value="2099-01-01"' in response.content.decode()  # what was typed stays in the field
    alice.refresh_from_db()
    assert alice.birthday is None
    from accounts.services import member_staff_update
    from core.errors import Invalid

    with pytest.raises(Invalid) as refused:
        member_staff_update(member=alice, data={"birthday": date(2099, 1, 1)}, actor_user=staff)
    assert "birthday" in refused.value.fields


@pytest.mark.django_db
def test_sms_without_a_phone_is_refused_on_that_preference(alice_client, alice):
    response = alice_client.post(reverse("accounts:profile"), _profile_data(phone="", reminders_channel="sms"))
    assert response.status_code == 200
    assert response.context["form"].errors["reminders_channel"] == ["Add a phone number above to get SMS."]
    alice.refresh_from_db()
    assert alice.reminders_channel == Channel.EMAIL


@pytest.mark.django_db
def test_profile_form_is_csrf_protected(alice):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice.user)
    assert strict.post(reverse("accounts:profile"), _profile_data()).status_code == 403


@pytest.mark.django_db
def test_data_export_is_a_json_download_of_everything_held(alice_client, alice, tea_shop):
    member_upsert_for_partner(partner=tea_shop, external_id="T-1", data={"email": "alice@example.com"})
    alice_client.post(reverse("accounts:profile"), _profile_data())
    response = alice_client.get(reverse("accounts:export"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith('attachment; filename="loyalty-loop-data-')
    data = json.loads(response.content)
    assert data["profile"]["email"] == "alice@example.com"
    assert data["profile"]["birthday"] == "1991-04-02"
    assert data["communication_preferences"] == {"offers": "email", "reminders": "sms", "surveys": "none",
                                                 "statements": "email"}
    assert {"partner": "Tea Shop", "external_id": "T-1"} in data["partner_ids"]
    assert len(data["consent_history"]) == 3


@pytest.mark.django_db
def test_delete_account_needs_the_password(alice_client, alice):
    response = alice_client.post(reverse("accounts:delete"), {"password": "nope"})
    assert response.status_code == 200
    assert response.context["form"].errors["password"] == ["That is not your password."]
    assert User.objects.filter(email="alice@example.com").exists()


@pytest.mark.django_db
def test_delete_account_erases_personal_data_and_keeps_the_books(alice_client, alice, tea_shop):
    member_upsert_for_partner(partner=tea_shop, external_id="T-1", data={"email": "alice@example.com"})
    alice_client.post(reverse("accounts:profile"), _profile_data())
    response = alice_client.post(reverse("accounts:delete"), {"password": "correct-horse-battery"})
    assert response.status_code == 302

    member = Member.objects.get(pk=alice.pk)  # the row stays for the program's books
    assert member.erased_at is not None
    assert (member.email, member.first_name, member.last_name, member.phone, member.birthday) == ("", "", "", "", None)
    assert member.user is None
    assert not member.external_ids.exists()
    assert not ConsentEvent.objects.filter(member=member).exists()
    assert not User.objects.filter(email="alice@example.com").exists()
    assert not EmailAddress.objects.filter(email="alice@example.com").exists()
    assert AuditLog.objects.filter(action="member.erased", member=member).exists()
    # Logged out, and the old password opens nothing.
    assert alice_client.get(reverse("dashboard")).status_code == 302
    alice_client.post(reverse("account_login"), {"login": "alice@example.com", "password": "correct-horse-battery"})
    assert alice_client.get(reverse("dashboard")).status_code == 302


@pytest.mark.django_db
def test_after_deletion_the_same_email_can_join_again_as_a_new_member(client, alice, mailoutbox):
    from accounts.services import member_erase

    member_erase(member=alice)
    _signup(client, "alice@example.com")
    client.post(_confirmation_link(mailoutbox[-1]))
    new = Member.objects.get(email="alice@example.com")
    assert new.pk != alice.pk
    assert new.points_available == 0


@pytest.mark.django_db
def test_home_page_invites_anonymous_visitors_to_join(client):
    page = client.get("/")
    assert page.status_code == 200
    assert reverse("account_signup").encode() in page.content


@pytest.mark.django_db
def test_marking_notifications_read_says_what_it_did(alice_client, alice):
    from messaging.models import Purpose
    from messaging.services import Note, notify

    notify(notes=[Note(alice.pk, "tier", "You reached Silver"), Note(alice.pk, "badge", "New badge: Explorer")],
           purpose=Purpose.TRANSACTIONAL)
    page = alice_client.post(reverse("accounts:notifications-read"), follow=True)
    assert page.redirect_chain[-1][0].endswith("#notes-heading")
    assert "2 notifications marked as read." in page.content.decode()
    assert 'class="unread"' not in page.content.decode()
    again = alice_client.post(reverse("accounts:notifications-read"), follow=True)
    assert "Nothing new: every notification was already read." in again.content.decode()


@pytest.mark.django_db
def test_the_notifications_page_lists_them_all_and_the_navigation_counts_the_unread(
        alice_client, alice, django_assert_max_num_queries):
    """Seen: no page to read past the dashboard's five, no unread count anywhere."""
    from messaging.models import Purpose
    from messaging.services import Note, notify

    notify(notes=[Note(alice.pk, "badge", f"Badge number {n}", url="/rewards/badges/") for n in range(30)],
           purpose=Purpose.TRANSACTIONAL)
    page = alice_client.get(reverse("accounts:notifications")).content.decode()
    assert page.count('class="unread"') == 25 and "Badge number 29" in page and "Page 1 of 2" in page
    assert 'data-testid="unread">30<' in page and "30</span><span class=\"visually-hidden\"> unread" in page
    older = alice_client.get(reverse("accounts:notifications"), {"page": 2}).content.decode()
    assert "Badge number 0" in older and "Badge number 29" not in older
    with django_assert_max_num_queries(12) as counted:
        alice_client.get(reverse("accounts:notifications"))
    notify(notes=[Note(alice.pk, "badge", f"More {n}") for n in range(50)], purpose=Purpose.TRANSACTIONAL)
    with django_assert_max_num_queries(len(counted.captured_queries)):
        alice_client.get(reverse("accounts:notifications"))
    done = alice_client.post(reverse("accounts:notifications-read"), {"next": "notifications"}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("accounts:notifications")
    assert "80 notifications marked as read." in done.content.decode()
    assert 'data-testid="unread"' not in done.content.decode() and 'class="unread"' not in done.content.decode()


@pytest.mark.django_db
def test_missing_pages_and_errors_are_branded_pages_with_a_way_back(client, rf):
    """Seen: Django's bare "Not Found" and "Server Error (500)"."""
    from loyalty_site.views import server_error

    missing = client.get("/no-such-page/")
    html = missing.content.decode()
    assert missing.status_code == 404 and "We could not find that page" in html
    assert "Loyalty Loop" in html and 'href="/"' in html  # the site's header, and the way home
    failed = server_error(rf.get("/rewards/"))
    assert failed.status_code == 500 and b"Something went wrong on our side" in failed.content
    assert b'href="/"' in failed.content
