"""Recognition: opt-in public profiles, leaderboards and spotlights."""

from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image

from community.models import PublicProfile
from community.services import public_profile_update, spotlight_create
from core.errors import Conflict, Invalid
from rewards.services import points_adjust
from tests import images
from tests.factories import RuleFactory, customer, place_order, set_program

pytestmark = pytest.mark.django_db


def earn(tea_shop, external_id, order_id, amount):
    place_order(tea_shop, order_id, external_id, lines=(("TEA", 1, amount, "tea"),),
                placed_at=timezone.now() - timedelta(minutes=10))


@pytest.fixture
def players(tea_shop):
    set_program(pending_days=0, expiry_policy="never")
    RuleFactory(name="1 per EUR")
    members = {}
    for name, amount, public in [("Ada", "300.00", True), ("Grace", "200.00", False), ("Linus", "100.00", True),
                                 ("Barbara", "50.00", True)]:
        member = customer(tea_shop, name.lower(), email=f"{name.lower()}@example.com", first_name=name)
        earn(tea_shop, name.lower(), f"o-{name}", amount)
        if public:
            public_profile_update(member=member, is_public=True, display_name=f"{name} L.")
        members[name] = member
    return members


def test_leaderboard_shows_only_members_who_opted_in(client, players):
    html = client.get("/community/").content.decode()
    assert "Ada L." in html and "Linus L." in html
    assert "Grace" not in html


def test_a_member_sees_their_own_rank_outside_the_top_list_or_where_they_would_stand(client, players):
    from community.selectors import points_leaderboard

    board = points_leaderboard(title="all", since=None, member=players["Barbara"], limit=2)
    assert [(row.rank, row.name, int(row.value)) for row in board.rows] == [(1, "Ada L.", 300), (2, "Linus L.", 100)]
    assert (board.me.rank, int(board.me.value), board.me_public) == (3, 50, True)
    private = points_leaderboard(title="all", since=None, member=players["Grace"], limit=2)
    assert (private.me.rank, private.me_public) == (2, False)  # between Ada and Linus, were she to show herself
    assert "Grace" not in [row.name for row in private.rows]


def test_a_private_members_page_does_not_exist(client, players):
    assert client.get(f"/community/members/{players['Grace'].pk}/").status_code == 404
    page = client.get(f"/community/members/{players['Ada'].pk}/")
    assert page.status_code == 200 and b"Ada L." in page.content
    assert b"ada@example.com" not in page.content


def test_the_community_page_runs_a_constant_number_of_queries(client, tea_shop, players,
                                                              django_assert_max_num_queries):
    client.get("/community/")
    with django_assert_max_num_queries(20) as few:
        client.get("/community/")
    baseline = len(few.captured_queries)
    for number in range(40):
        member = customer(tea_shop, f"m{number}", email=f"m{number}@example.com")
        points_adjust(member=member, points=10 + number, reason="test")
        public_profile_update(member=member, is_public=True, display_name=f"Member {number}")
    client.get("/community/")
    with django_assert_max_num_queries(baseline):
        client.get("/community/")


def test_spotlight_only_features_public_members(client, players, staff):
    with pytest.raises(Conflict):
        spotlight_create(member=players["Grace"], headline="Tea expert", text="", actor_user=staff)
    spotlight_create(member=players["Ada"], headline="Tea expert", text="Ada knows her sencha.", actor_user=staff)
    assert b"Tea expert" in client.get("/community/").content


class TestAvatar:
    def test_an_avatar_is_resized_and_stripped_of_its_metadata(self, alice):
        profile = public_profile_update(member=alice, is_public=True, display_name="Alice A.",
                                        avatar=images.photo())
        with Image.open(profile.avatar.path) as picture:
            assert max(picture.size) == 256
            assert picture.format == "JPEG"
            assert len(picture.getexif()) == 0  # no camera, no GPS

    @pytest.mark.parametrize(
        ("upload", "message"),
        [
            (images.renamed_text, "This file is not a picture; send a JPEG, PNG or WebP."),
            (images.svg, "This file is not a picture; send a JPEG, PNG or WebP."),
            (images.truncated, "The picture is damaged or incomplete."),
            (images.bomb, "The picture has too many pixels; please send a smaller one."),
            (lambda: images.huge(megabytes=6), "The picture is larger than 5 MB."),
        ],
    )
    def test_bad_pictures_are_refused_and_nothing_is_stored(self, alice, upload, message):
        with pytest.raises(Invalid) as refused:
            public_profile_update(member=alice, is_public=True, display_name="Alice A.", avatar=upload())
        assert refused.value.fields == {"avatar": [message]}
        assert not PublicProfile.objects.filter(member=alice).exists()

    def test_the_form_shows_the_error_next_to_the_field(self, alice_client):
        response = alice_client.post("/community/profile/", {"is_public": "on", "display_name": "Alice A.",
                                                             "avatar": images.renamed_text()})
        assert response.status_code == 200
        assert response.context["form"].errors["avatar"]

    def test_a_public_profile_needs_a_name_without_contact_details(self, alice):
        with pytest.raises(Invalid) as refused:
            public_profile_update(member=alice, is_public=True, display_name="write to me@example.com")
        assert "display_name" in refused.value.fields


def test_the_ranking_is_shared_for_a_minute_but_your_own_points_are_always_fresh(players, tea_shop):
    from django.core.cache import cache

    from community.selectors import points_leaderboard

    before = points_leaderboard(title="all", since=None, member=players["Barbara"])
    assert (before.me.rank, int(before.me.value)) == (3, 50)
    earn(tea_shop, "barbara", "o-Barbara-2", "250.00")
    after = points_leaderboard(title="all", since=None, member=players["Barbara"])
    assert (after.me.rank, int(after.me.value)) == (1, 300)  # level with Ada: nobody is ahead
    assert [row.name for row in after.rows] == ["Ada L.", "Linus L.", "Barbara L."]  # the shared list, a minute old
    cache.clear()
    fresh = points_leaderboard(title="all", since=None, member=players["Barbara"])
    assert [(row.rank, row.name) for row in fresh.rows] == [(1, "Ada L."), (1, "Barbara L."), (3, "Linus L.")]
    assert fresh.me.rank == 1
