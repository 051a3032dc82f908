"""Members' uploads are private until published: a pending or rejected review's photos and a
private avatar answer 404 to everyone but their member and staff, and their names cannot be guessed."""

import re

import pytest
from django.test import Client

from community import services
from community.models import PublicProfile
from community.services import ReviewInput
from tests import images

pytestmark = pytest.mark.django_db


@pytest.fixture
def kettle(tea_shop):
    product, _ = services.product_upsert(partner=tea_shop, sku="KETTLE-1", name="Glass kettle", category="teaware")
    return product


@pytest.fixture
def review(alice, kettle):
    return services.review_submit(member=alice, product=kettle,
                                  data=ReviewInput(5, "Lovely", "Boils fast, looks great on the table."),
                                  photos=[images.photo("my-kettle.jpg")])


def client_for(member=None, staff=None) -> Client:
    client = Client()
    if member is not None:
        client.force_login(member.user)
    if staff is not None:
        client.force_login(staff)
    return client


def test_a_pending_reviews_photo_is_seen_only_by_its_author_and_staff(review, alice, bob, staff):
    photo = review.photos.get()
    for url in (photo.image.url, photo.thumbnail.url):
        assert url.startswith("/media/private/reviews/")
        assert Client().get(url).status_code == 404
        assert client_for(bob).get(url).status_code == 404
        mine = client_for(alice).get(url)
        assert (mine.status_code, mine["Cache-Control"]) == (200, "private, no-store")
        assert b"".join(mine.streaming_content)[:3] == b"\xff\xd8\xff"  # a JPEG
        assert client_for(staff=staff).get(url).status_code == 200


def test_a_published_photo_is_public_and_a_rejected_one_is_private_again(review, staff):
    url = review.photos.get().image.url
    services.review_approve(review_id=review.pk, moderator=staff)
    public = Client().get(url)
    assert (public.status_code, public["Cache-Control"]) == (200, "public, max-age=86400")
    services.review_reject(review_id=review.pk, moderator=staff, reason="Not about the product")
    assert Client().get(url).status_code == 404


def test_upload_names_are_random_not_the_review_number(review):
    photo = review.photos.get()
    for name in (photo.image.name, photo.thumbnail.name):
        assert re.fullmatch(r"reviews/[A-Za-z0-9_-]{24}\.jpg", name), name
    assert photo.image.name != photo.thumbnail.name


def test_the_public_media_folder_does_not_hold_members_uploads(review, settings):
    import os

    photo = review.photos.get()
    assert not os.path.exists(os.path.join(settings.MEDIA_ROOT, photo.image.name))
    assert Client().get(f"/media/{photo.image.name}").status_code == 404


def test_a_private_avatar_is_hidden_and_a_public_one_shown(alice, bob):
    profile = services.public_profile_update(member=alice, is_public=False, display_name="Ali",
                                             avatar=images.photo("me.png", fmt="PNG", size=(300, 300)))
    url = profile.avatar.url
    assert re.fullmatch(r"/media/private/avatars/[A-Za-z0-9_-]{24}\.png", url), url
    assert Client().get(url).status_code == 404
    assert client_for(bob).get(url).status_code == 404
    assert client_for(alice).get(url).status_code == 200
    services.public_profile_update(member=alice, is_public=True, display_name="Ali")
    assert PublicProfile.objects.get(member=alice).avatar.url == url
    assert Client().get(url).status_code == 200


def test_an_unknown_or_traversing_name_is_404(alice):
    client = client_for(alice)
    assert client.get("/media/private/reviews/nothing.jpg").status_code == 404
    assert client.get("/media/private/../../etc/passwd").status_code == 404
    assert client.get("/media/private/%2e%2e/settings.py").status_code == 404
