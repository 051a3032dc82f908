"""The program's look, set by staff in the admin: its name, logo and colours reach the portal, the
admin and every e-mail; a colour too light to read on and a file that is not a picture are
refused next to their field; a logo keeps none of its file's metadata."""

import io

import pytest
from PIL import Image

from accounts.models import AuditLog
from messaging.services import Note, notify
from rewards.models import ProgramSettings
from rewards.program import current_program
from tests import images
from tests.factories import set_program

pytestmark = pytest.mark.django_db


SETTINGS = {"time_zone": "UTC", "currency": "EUR", "accepted_currencies": "EUR", "pending_days": "14",
            "expiry_policy": "rolling", "expiry_months": "12", "expiring_soon_days": "30", "point_value": "0.01"}


def save(staff_client, **changes):
    row = ProgramSettings.objects.get()
    data = {**SETTINGS, "name": "", "colour": "#0f766e", "accent_colour": "#b45309", **changes}
    return staff_client.post(f"/admin/rewards/programsettings/{row.pk}/change/", data)


def test_staff_rename_and_recolour_the_program_and_members_see_it_everywhere(staff_client, staff, alice, client,
                                                                            mailoutbox):
    set_program(pending_days=14)
    response = save(staff_client, name="Tea Club", colour="#7c2d12", logo=images.photo("logo.jpg", size=(1200, 400)),
                    support_email="help@teaclub.example")
    assert response.status_code == 302
    log = AuditLog.objects.filter(action="program.settings_changed", actor_user=staff).latest("id")
    assert log.after["name"] == "Tea Club" and log.after["colour"] == "#7c2d12"

    client.force_login(alice.user)
    page = client.get("/", follow=True).content.decode()
    assert "· Tea Club</title>" in page and "--brand: #7c2d12;" in page
    logo_url = current_program().brand.logo_url
    assert logo_url.startswith("http") and f'src="{logo_url}"' in page
    assert 'href="mailto:help@teaclub.example"' in page  # where to ask for help, in the footer

    notify(notes=[Note(alice.pk, "tier_up", "Welcome to Silver!", "You earn 1.25x now.", "/rewards/tier/")])
    [mail] = list(mailoutbox)
    html = mail.alternatives[0][0]
    assert mail.from_email.startswith("Tea Club <") and "background:#7c2d12" in html and logo_url in html
    assert "Tea Club: http" in mail.body  # the text part's footer
    assert 'mailto:help@teaclub.example' in html and "Questions? Write to help@teaclub.example" in mail.body
    assert "#7c2d12" in staff_client.get("/admin/").content.decode()  # the admin wears it too
    save(staff_client, name="Tea Club", colour="#7c2d12", **{"logo-clear": "on"})  # staff take the logo away
    assert not ProgramSettings.objects.get().logo and not current_program().brand.logo_url


def test_the_logo_is_scaled_down_and_keeps_no_metadata(staff_client):
    set_program(pending_days=14)
    save(staff_client, logo=images.photo("logo.jpg", size=(1200, 400), gps=True))
    stored = ProgramSettings.objects.get().logo
    with stored.open("rb") as handle:
        picture = Image.open(io.BytesIO(handle.read()))
    assert max(picture.size) == 400
    assert not picture.getexif()  # no camera, no GPS position


@pytest.mark.parametrize("upload, words", [(images.renamed_text, "not a picture"), (images.svg, "not a picture")])
def test_a_file_that_is_not_a_picture_is_refused_as_the_logo(staff_client, upload, words):
    set_program(pending_days=14)
    response = save(staff_client, name="Tea Club", logo=upload())
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert words in " ".join(form.errors["logo"])
    assert 'value="Tea Club"' in response.content.decode()  # what staff typed is kept
    assert not ProgramSettings.objects.get().logo


def test_a_colour_too_light_for_white_text_is_refused_with_the_contrast(staff_client):
    set_program(pending_days=14)
    response = save(staff_client, name="Tea Club", colour="#fde047")
    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["colour"]
    assert "Too light to read" in error and "1.3:1" in error
    assert save(staff_client, colour="not a colour").context["adminform"].form.errors["colour"]
    assert ProgramSettings.objects.get().colour == "#0f766e"
