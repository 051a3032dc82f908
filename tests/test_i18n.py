"""German (issue 17): the catalogue is complete, compiled and up to date with the code; every portal
page and every e-mail read in German shows no English from our catalogue; templates hold no text
outside the translation tags; dates, numbers and money are written the German way while JSON-LD,
CSV, data attributes and form values keep machine formats; a member's language is stored and used
for what we send them, staff's rewordings kept per language; the partner API takes the language
and keeps speaking English."""

import csv
import gettext
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.template.base import Lexer, TokenType
from django.test import Client

from tests import po

pytestmark = pytest.mark.django_db

ROOT = Path(settings.BASE_DIR)
PO = ROOT / "locale" / "de" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
GERMAN = {settings.LANGUAGE_COOKIE_NAME: "de"}


def _catalogue() -> list[po.Entry]:
    return po.read(PO)[1:]  # the first entry is the header


# --- The catalogue ---------------------------------------------------------------------------------


def test_every_text_has_its_german_and_the_compiled_catalogue_is_the_one_in_the_po_file():
    entries = _catalogue()
    assert len(entries) > 1000
    untranslated = [e.id for e in entries if (not e.str if e.plural is None else not all(e.strs.values()))]
    assert untranslated == []
    assert [e.id for e in entries if "fuzzy" in e.flags] == []
    with MO.open("rb") as handle:
        compiled = dict(gettext.GNUTranslations(handle)._catalog)
    compiled.pop("", None)  # the header
    expected = {}
    for e in entries:
        key = e.id if e.ctx is None else f"{e.ctx}\x04{e.id}"
        if e.plural is None:
            expected[key] = e.str
        else:
            expected.update({(key, n): text for n, text in e.strs.items()})
    assert compiled == expected, "django.mo is older than django.po: run `make messages`"


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="GNU gettext (xgettext) is not installed")
def test_the_catalogue_holds_every_text_of_the_code_and_templates_and_no_other(tmp_path):
    """`make messages` run on a copy finds exactly the texts the committed catalogue has."""
    copy = tmp_path / "project"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
        ".venv", "node_modules", ".git", "tests", "bench", "fuzz", "staticfiles", "media", "private-media", "docs",
        "*.sqlite3*", "__pycache__"))
    subprocess.run([sys.executable, "manage.py", "makemessages", "-l", "de", "--no-obsolete", "--add-location=file",
                    "--ignore=.venv", "--ignore=node_modules"], cwd=copy, check=True, capture_output=True)
    fresh = {(e.ctx, e.id) for e in po.read(copy / "locale" / "de" / "LC_MESSAGES" / "django.po")[1:]}
    committed = {(e.ctx, e.id) for e in _catalogue()}
    assert sorted(fresh - committed, key=str) == [], "new texts to translate: run `make messages`"
    assert sorted(committed - fresh, key=str) == [], "texts no longer used: run `make messages`"


# --- No text outside the translation tags ------------------------------------------------------------

# Words a template may hold as they are: names and codes that are the same in every language.
VERBATIM = {"WhatsApp", "X", "NPS", "CSV", "SKU", "RFM", "CLV", "SMS", "JSON", "API", "EUR", "M", "R", "F",
            "P(alive)", "R F M", "BG/NBD", "Gamma-Gamma", "r", "a", "b", "p", "q", "α", "γ"}
SHOWN_ATTRIBUTES = re.compile(r'\b(?:aria-label|title|alt|placeholder)="([^"]*)"')


def _loose_words(template: Path) -> list[str]:
    """Text of a template that no translation tag covers: the template with every tag, variable and
    translated block replaced by a mark, then its HTML tags, comments and code taken out."""
    parts = []
    inside = 0
    for token in Lexer(template.read_text()).tokenize():
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0] if token.contents.split() else ""
            inside += name in ("blocktranslate", "blocktrans")
            inside -= name in ("endblocktranslate", "endblocktrans")
        parts.append(token.contents if token.token_type == TokenType.TEXT and not inside else "§")
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", "".join(parts), flags=re.S)
    found = [value for value in SHOWN_ATTRIBUTES.findall(text)
             if re.search(r"[A-Za-z]{2,}", value.replace("§", "")) and value.strip() not in VERBATIM]
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"<[^>]*>", " ", text)
    text = re.sub(r"&[a-z]+;|&#\d+;", " ", text).replace("P(alive)", " ")
    for piece in re.split(r"[§·|,;:()\[\]/—–=*#%+\-]+", text):
        words = piece.split()
        if re.search(r"[A-Za-z]{2,}", piece) and not all(word in VERBATIM for word in words):
            found.append(" ".join(words))
    return found


def test_no_template_of_ours_holds_text_outside_the_translation_tags():
    templates = [p for p in (ROOT / "templates").rglob("*") if p.suffix in (".html", ".txt")]
    loose = {str(p.relative_to(ROOT)): words for p in templates if (words := _loose_words(p))}
    assert loose == {}


# --- Every page and e-mail in German --------------------------------------------------------------


class _Shown(HTMLParser):
    """What a reader meets on a page: its text and the words of its labels, titles and alt texts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        for name, value in attrs:
            if value and (name in ("aria-label", "title", "alt", "placeholder", "data-label")
                          or (name == "value" and dict(attrs).get("type") in ("submit", "button"))):
                self.texts.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.texts.append(data)


def shown(markup: str) -> tuple[set[str], str]:
    parser = _Shown()
    parser.feed(markup)
    texts = {" ".join(t.split()) for t in parser.texts}
    return texts, " | ".join(sorted(texts))


_PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}|%%|<[^>]+>|\n")


def _english_seen(texts: set[str], whole: str, entries, store_words: str) -> list[str]:
    """The catalogue's English texts (different in German) that a page shows: a whole text node,
    or a run of three words or more of a longer text. The store's own names (products, rewards,
    tiers, badges: its content, in its own language) do not count."""
    seen = []
    for e in entries:
        german = e.str if e.plural is None else e.strs.get(1, "")
        if german == e.id:
            continue
        for english in filter(None, [e.id, e.plural]):
            pieces = [p.strip(" .,;:!?") for p in _PLACEHOLDER.split(english)]
            if "%(" not in english and "{" not in english and "<" not in english and english in texts \
                    and english not in store_words:
                seen.append(english)
            seen += [p for p in pieces if len(p.split()) >= 3 and p in whole and p not in store_words]
    return sorted(set(seen))


def _store_words() -> str:
    """Everything the store wrote itself (names, descriptions, reviews), and the notifications
    members were sent (records, in the language the member had then: the demo member had none),
    as one text."""
    from accounts.models import Notification
    from community.models import Answer, Product, Question, Review
    from feedback.models import Survey, SurveyQuestion
    from rewards.models import Badge, BadgeLevel, Challenge, LedgerEntry, Reward, Tier

    words = []
    for model, fields in ((Product, ["name", "category"]), (Reward, ["name", "description"]),
                          (Tier, ["name", "benefits"]), (Badge, ["name", "description"]), (BadgeLevel, ["name"]),
                          (Challenge, ["name", "description"]), (Survey, ["name", "intro"]),
                          (SurveyQuestion, ["text", "options"]), (Review, ["title", "text", "staff_reply"]),
                          (Question, ["text"]), (Answer, ["text"]), (LedgerEntry, ["reason"]),
                          (Notification, ["title", "body"])):
        for row in model.objects.values_list(*fields):
            words += [str(value) for value in row]
    return " | ".join(words)


@pytest.fixture
def demo(db):
    """The demo program, the one `make run` serves (seeded in the test's own transaction)."""
    call_command("seed_demo", stdout=StringIO())


def _member_pages() -> list[str]:
    from accounts.demo import DEMO_MEMBER_EMAIL
    from accounts.models import Member
    from community.models import PublicProfile
    from feedback.models import Survey
    from messaging.services import preferences_url, unsubscribe_url
    from rewards.models import Reward

    member = Member.objects.get(email=DEMO_MEMBER_EMAIL)
    reward = Reward.objects.filter(is_active=True).order_by("points_cost").first()
    survey = Survey.objects.order_by("pk").first()
    public = PublicProfile.objects.filter(is_public=True).first()
    return ["/dashboard/", "/rewards/", f"/rewards/{reward.pk}/redeem/", "/rewards/history/",
            "/rewards/coupons/", "/rewards/tier/", "/rewards/badges/", "/rewards/challenges/", "/rewards/earn/",
            "/community/", f"/community/members/{public.member_id}/", "/community/profile/", "/community/reviews/",
            "/products/TEA-SENCHA/", "/products/TEA-SENCHA/review/", "/surveys/", f"/surveys/{survey.pk}/",
            f"/surveys/{survey.pk}/thanks/", "/refer/", f"/r/{member.referral_code}/", "/me/profile/",
            "/me/notifications/", "/me/profile/delete/", "/no-such-page/",
            preferences_url(member_id=member.pk).removeprefix(settings.SITE_URL),
            unsubscribe_url(member_id=member.pk, address="", purpose="offers").removeprefix(settings.SITE_URL)]


VISITOR_PAGES = ["/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/", "/rewards/earn/",
                 "/community/", "/products/TEA-SENCHA/", "/embed/v1/products/TEA-SENCHA/reviews.html"]


def _walk(client: Client, paths: list[str]) -> dict[str, str]:
    pages = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code in (200, 404), (path, response.status_code)
        pages[path] = response.content.decode()
    return pages


def test_every_portal_page_in_german_shows_no_english_from_our_catalogue_and_german_formats(demo):
    from accounts.demo import DEMO_MEMBER_EMAIL
    from accounts.models import User

    entries = _catalogue()
    store_words = _store_words()
    member = Client()
    member.force_login(User.objects.get(email=DEMO_MEMBER_EMAIL))
    paths = _member_pages()
    member.cookies.load(GERMAN)
    # A form sent back with its mistakes: the messages next to the fields are German too.
    refused = member.post("/me/profile/", {
        "first_name": "Mia", "birthday": "2099-01-01", "language": "de", "offers_channel": "sms",
        "reminders_channel": "email", "surveys_channel": "none", "statements_channel": "none"})
    assert refused.status_code == 200
    german = {**_walk(member, paths), "/me/profile/ (a birthday in 2099)": refused.content.decode()}
    visitor = Client()
    visitor.cookies.load(GERMAN)
    german.update({f"{path} (visitor)": page for path, page in _walk(visitor, VISITOR_PAGES).items()})

    found = {}
    for path, page in german.items():
        texts, whole = shown(page)
        if english := _english_seen(texts, whole, entries, store_words):
            found[path] = english
    assert found == {}
    assert [path for path, page in german.items() if '<html lang="de">' not in page] == [
        "/embed/v1/products/TEA-SENCHA/reviews.html (visitor)"]  # a fragment for the shop's own page
    assert "Holen Sie mehr aus jedem Einkauf" in german["/ (visitor)"]
    assert "Muss ein Datum zwischen dem 1.1.1900 und heute sein." in german["/me/profile/ (a birthday in 2099)"]

    # The same walk in English finds the catalogue's texts everywhere: the check above can see them.
    english = Client()
    english.force_login(User.objects.get(email=DEMO_MEMBER_EMAIL))
    seen = set()
    for page in _walk(english, paths).values():
        texts, whole = shown(page)
        seen.update(_english_seen(texts, whole, entries, store_words))
    assert len(seen) > 200

    # Numbers and dates the German way for people; machine formats where machines read.
    dashboard = member.get("/dashboard/").content.decode()
    available = re.search(r'data-testid="points-available">([^<]+)<', dashboard).group(1)
    assert re.fullmatch(r"\d{1,3}(\.\d{3})*", available)  # 1.264: grouped with a dot
    product = member.get("/products/TEA-SENCHA/").content.decode()
    average = re.search(r'data-testid="average">.*?</span> ([^<]+)<', product, re.S).group(1)
    assert re.fullmatch(r"\d,\d", average)  # 4,5: a decimal comma for people...
    data = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>', product, re.S).group(1))
    assert re.fullmatch(r"\d\.\d+", data["aggregateRating"]["ratingValue"])  # ...a point for machines
    for page in (dashboard, product, member.get("/rewards/").content.decode(),
                 member.get("/rewards/badges/").content.decode(), member.get("/rewards/tier/").content.decode()):
        assert all(re.fullmatch(r"\d+(\.\d+)?", width) for width in re.findall(r"width: ([^%;\"]*)%", page))
        assert all(re.fullmatch(r"\d+(\.\d+)?", value) for value in re.findall(r'aria-valuenow="([^"]*)"', page))
    profile = member.get("/me/profile/").content.decode()
    assert '<input type="date" name="birthday" value="1990-12-10"' in profile  # ISO in a date input
    assert re.search(r"\d{1,2}\. (Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|"
                     r"Dezember) \d{4}|\d{2}\.\d{2}\.\d{4}", member.get("/rewards/history/").content.decode())

    staff = Client()
    staff.force_login(User.objects.get(email="staff@example.com"))
    staff.cookies.load(GERMAN)
    overview = staff.get("/insights/").content.decode()
    assert "Aktive Mitglieder" in overview and "Stand " in overview
    csv_text = staff.get("/insights/?format=csv").content.decode()
    assert csv_text.startswith("metric,this period,previous period")  # data: English names...
    rows = list(csv.reader(StringIO(csv_text)))[1:]
    assert rows[0][0] == "Active members"
    assert all(re.fullmatch(r"-?\d+(\.\d+)?", value) for row in rows for value in row[1:] if value)  # plain numbers


def test_every_kind_of_message_in_german_shows_no_english_from_our_catalogue(alice, mailoutbox):
    from messaging import catalogue, rendering

    entries = _catalogue()
    store_words = _store_words()
    found = {}
    for key in catalogue.KINDS:
        message = rendering.preview(key, "de")
        for part, markup in (("html", message.html), ("text", f"<p>{message.subject}</p><pre>{message.text}</pre>"),
                             ("sms", f"<p>{message.sms}</p>")):
            texts, whole = shown(markup)
            if english := _english_seen(texts, whole, entries, store_words):
                found[f"{key} ({part})"] = english
    assert found == {}
    assert rendering.preview("points_expiring", "de").subject == "300 Ihrer Punkte verfallen am 3. März 2027"

    # allauth's own mails, asked for in German, come in German in our layout.
    visitor = Client()
    visitor.cookies.load(GERMAN)
    visitor.post("/accounts/password/reset/", {"email": "alice@example.com"})
    [mail] = mailoutbox
    html = mail.alternatives[0][0]
    assert "Hallo von" in mail.body and '<html lang="de">' in html
    texts, whole = shown(html)
    assert _english_seen(texts, whole, entries, store_words) == []


# --- Formats: the reader's for people, machine formats for machines --------------------------------------


# --- The member's language ------------------------------------------------------------------------------


def test_a_member_who_reads_german_gets_german_messages_in_our_layout_and_an_english_member_english(
        alice, bob, mailoutbox):
    from accounts.services import member_update_profile
    from rewards.services import points_adjust
    from tests.factories import RewardFactory

    member_update_profile(member=alice, language="de")
    RewardFactory(name="Stoneware cup", points_cost=1200)
    for member in (alice, bob):
        points_adjust(member=member, points=1500, reason="test")
    from messaging import services

    assert services.rewards_unlocked_send() == 2
    mails = {mail.to[0]: mail for mail in mailoutbox}
    german, english = mails["alice@example.com"], mails["bob@example.com"]
    assert german.subject == "Sie können jetzt Stoneware cup einlösen"
    assert "Hallo Alice," in german.body and "Dafür braucht es 1.200 Punkte, und die haben Sie." in german.body
    html = german.alternatives[0][0]
    assert "Ihre Nachrichteneinstellungen" in html and '<html lang="de">' in html
    assert english.subject == "You can now redeem Stoneware cup"
    assert "It takes 1,200 points, and you have them." in english.body
    assert alice.notifications.get().title == "Sie können jetzt Stoneware cup einlösen"  # the portal's note too


def test_staff_reword_each_language_on_its_own_and_a_language_they_left_keeps_its_own_defaults(
        staff_client, alice, bob, mailoutbox):
    from accounts.services import member_update_profile
    from messaging import services
    from messaging.models import MessageKindSettings
    from rewards.services import points_adjust
    from tests.factories import RewardFactory

    services.message_kinds_ensure()
    row = MessageKindSettings.objects.get(kind="reward_unlocked")
    url = f"/admin/messaging/messagekindsettings/{row.pk}/change/"
    page = staff_client.get(url).content.decode()
    assert 'name="title_de"' in page and "Titel auf Deutsch" not in page  # the admin reads English here
    assert staff_client.post(url, {"delivery": "send", "title": "{reward} is yours for the taking", "body": "",
                                   "title_de": "", "body_de": ""}).status_code == 302
    member_update_profile(member=alice, language="de")
    RewardFactory(name="Stoneware cup", points_cost=300)
    for member in (alice, bob):
        points_adjust(member=member, points=500, reason="test")
    services.rewards_unlocked_send()
    subjects = {mail.to[0]: mail.subject for mail in mailoutbox}
    assert subjects == {"bob@example.com": "Stoneware cup is yours for the taking",
                        "alice@example.com": "Sie können jetzt Stoneware cup einlösen"}  # not staff's English
    refused = staff_client.post(url, {"delivery": "send", "title": "", "body": "",
                                      "title_de": "{belohnung} gehört Ihnen", "body_de": ""})
    assert "Unknown placeholder {belohnung}" in refused.content.decode()  # next to the German field
    staff_client.post(url, {"delivery": "send", "title": "", "body": "", "title_de": "{reward} gehört Ihnen",
                            "body_de": "Für nur {cost} Punkte bei {program}."})
    row.refresh_from_db()
    assert (row.title, row.translations) == ("", {"de": {"title": "{reward} gehört Ihnen",
                                                         "body": "Für nur {cost} Punkte bei {program}."}})
    from messaging import rendering

    assert rendering.preview("reward_unlocked", "de").subject == "eine Dose Tee gratis gehört Ihnen"
    assert rendering.preview("reward_unlocked", "en").subject == "You can now redeem a free tin of tea"


def test_members_choose_their_language_on_their_profile_or_in_the_switcher_and_it_follows_them(alice, client):
    client.force_login(alice.user)
    page = client.get("/me/profile/").content.decode()
    assert '<option value="en" selected>English</option>' in page and '<option value="de">Deutsch</option>' in page
    form = {"first_name": "Alice", "last_name": "Archer", "birthday": "", "phone": "", "language": "de",
            "offers_channel": "none", "reminders_channel": "email", "surveys_channel": "none",
            "statements_channel": "none"}
    response = client.post("/me/profile/", form, follow=True)
    alice.refresh_from_db()
    assert alice.language == "de"
    assert "Ihr Profil ist gespeichert." in response.content.decode()  # the page follows at once
    client.post("/i18n/setlang/", {"language": "en", "next": "/me/profile/"})
    alice.refresh_from_db()
    assert alice.language == "en" and '<html lang="en">' in client.get("/dashboard/").content.decode()
    client.post("/i18n/setlang/", {"language": "de", "next": "/"})
    # A new device, a browser that asks for English: the member's own language wins after logging in.
    other = Client(HTTP_ACCEPT_LANGUAGE="en")
    other.post("/accounts/login/", {"login": "alice@example.com", "password": "correct-horse-battery"})
    assert '<html lang="de">' in other.get("/dashboard/").content.decode()
    assert client.post("/i18n/setlang/", {"language": "xx", "next": "/"}).status_code == 302
    alice.refresh_from_db()
    assert alice.language == "de"  # an unknown language changes nothing


def test_a_visitor_who_signs_up_in_german_is_written_to_in_german(client, mailoutbox):
    from accounts.models import Member

    client.cookies.load(GERMAN)
    client.post("/accounts/signup/", {"email": "grete@example.com", "password1": "Kessel-Tee-2027!",
                                      "password2": "Kessel-Tee-2027!"})
    [mail] = mailoutbox
    assert "Hallo von" in mail.body
    link = re.search(r"(/accounts/confirm-email/[^\s]+/)", mail.body).group(1)
    client.post(link)
    assert Member.objects.get(email="grete@example.com").language == "de"


def test_partners_send_a_members_language_and_the_api_answers_in_english_whatever_they_ask(api):
    created = api.post("/api/v1/members/", {"external_id": "cust-7", "email": "lena@example.com", "language": "de"},
                       format="json")
    assert created.status_code == 201 and created.json()["language"] == "de"
    refused = api.post("/api/v1/members/", {"external_id": "cust-8", "language": "xx"}, format="json",
                       HTTP_ACCEPT_LANGUAGE="de")
    assert refused.status_code == 400
    assert refused.json()["error"]["fields"]["language"] == ['"xx" is not a valid choice.']
    assert refused["Content-Language"] == "en"
    assert "Accept-Language" not in refused.get("Vary", "")  # the answer does not vary with it
    birthday = api.post("/api/v1/members/", {"external_id": "cust-9", "birthday": "2099-01-01"}, format="json",
                        HTTP_ACCEPT_LANGUAGE="de")
    assert birthday.json()["error"]["fields"]["birthday"] == ["Must be a date between 1900-01-01 and today."]


def test_one_call_tells_members_in_several_languages_each_in_their_own_and_in_order(alice, bob):
    """``notify`` with notes of a kind for members of three languages (German, English, and an
    Austrian German it does not have: German), and a campaign's note already in words: each member
    gets theirs, in the order given."""
    from datetime import date

    from accounts.models import Notification
    from accounts.services import member_update_profile
    from messaging import catalogue
    from messaging.services import Note, notify
    from tests.conftest import make_portal_member

    carol = make_portal_member("carol@example.com", first_name="Carol", language="de-at")
    member_update_profile(member=alice, language="de")
    words = catalogue.wording("points_expiring", "en")
    notify(notes=[words.note(alice.pk, "/rewards/", points=1250, date=date(2027, 3, 3)),
                  Note(bob.pk, "campaign", "Spring tea week", "Double points on green tea.", "/rewards/"),
                  words.note(bob.pk, "/rewards/", points=1250, date=date(2027, 3, 3)),
                  words.note(carol.pk, "/rewards/", points=40, date=date(2027, 3, 3))])
    told = [(n.member_id, n.title) for n in Notification.objects.order_by("pk")]
    assert told == [
        (alice.pk, "1.250 Ihrer Punkte verfallen am 3. März 2027"),
        (bob.pk, "Spring tea week"),
        (bob.pk, "1,250 of your points expire on 3 March 2027"),
        (carol.pk, "40 Ihrer Punkte verfallen am 3. März 2027"),
    ]
