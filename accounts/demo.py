"""Demo members, partners and logins for ``seed_demo``. Deterministic and idempotent."""

import random
from datetime import date

from allauth.account.models import EmailAddress

from accounts.models import Channel, ExternalId, Partner, User
from accounts.services import member_attach_user, member_upsert_for_partner, partner_create, partner_set_sharing

FIRST_NAMES = [
    "Ada", "Alan", "Grace", "Linus", "Margaret", "Tim", "Barbara", "Ken", "Radia", "Dennis", "Frances",
    "Edsger", "Hedy", "John", "Katherine", "Donald", "Shafi", "Guido", "Sophie", "Bjarne", "Anita", "Niklaus",
    "Lynn", "Yukihiro", "Karen", "Leslie", "Mary", "James", "Joan", "Robin", "Amara", "Chen", "Priya",
    "Mateo", "Ingrid", "Kwame", "Lucia", "Omar", "Sakura", "Tomasz", "Zainab", "Elif", "Noah", "Freya",
]
LAST_NAMES = [
    "Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Berners-Lee", "Liskov", "Thompson", "Perlman",
    "Ritchie", "Allen", "Dijkstra", "Lamarr", "McCarthy", "Johnson", "Knuth", "Goldwasser", "van Rossum",
    "Wilson", "Stroustrup", "Borg", "Wirth", "Conway", "Matsumoto", "Jones", "Lamport", "Shaw", "Gosling",
    "Clarke", "Milner", "Okafor", "Wei", "Sharma", "Garcia", "Larsen", "Mensah", "Rossi", "Haddad", "Tanaka",
    "Nowak", "Bello", "Yilmaz", "Becker", "Andersen",
]
DEMO_MEMBER_EMAIL = "member@example.com"
DEMO_MEMBER_PASSWORD = "loyalty-demo-1"
DEMO_STAFF_EMAIL = "staff@example.com"
DEMO_STAFF_PASSWORD = "loyalty-staff-1"
DEMO_PARTNERS = ["Demo Tea Shop", "Demo Coffee Bar"]
MEMBER_COUNT = 300


def _partner(name: str) -> Partner:
    return Partner.objects.filter(name=name).first() or partner_create(name=name)


def seed(*, rng: random.Random, stdout, context: dict) -> dict:
    partners = [_partner(name) for name in DEMO_PARTNERS]
    shop = partners[0]
    # One store with a web shop and a coffee bar till: staff let the two share their members.
    partner_set_sharing(partner=shop, shares_with=[partners[1]])
    known = set(ExternalId.objects.filter(partner=shop).values_list("external_id", flat=True))
    for index in range(1, MEMBER_COUNT + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        birthday = date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28))
        external_id = f"cust-{index:04d}"
        if external_id in known:
            continue
        data = {
            "email": f"{first}.{last}.{index}@example.com".lower().replace(" ", ""),
            "first_name": first, "last_name": last, "birthday": birthday,
            "phone": f"+4420{rng.randint(10_000_000, 99_999_999)}" if rng.random() < 0.6 else "",
        }
        consents = {"offers": Channel.EMAIL if rng.random() < 0.55 else Channel.NONE,
                    "surveys": Channel.EMAIL if rng.random() < 0.4 else Channel.NONE}
        member_upsert_for_partner(partner=shop, external_id=external_id, data=data, consents=consents)
        if index % 7 == 0:
            # Some shoppers also buy at the coffee bar, which knows them by its own id.
            member_upsert_for_partner(partner=partners[1], external_id=f"cb-{index}", data={"email": data["email"]})

    staff = User.objects.filter(email=DEMO_STAFF_EMAIL).first()
    if staff is None:
        staff = User.objects.create_superuser(DEMO_STAFF_EMAIL, DEMO_STAFF_PASSWORD, name="Demo Staff")
    user = User.objects.filter(email=DEMO_MEMBER_EMAIL).first()
    if user is None:
        user = User.objects.create_user(DEMO_MEMBER_EMAIL, DEMO_MEMBER_PASSWORD)
        EmailAddress.objects.create(user=user, email=DEMO_MEMBER_EMAIL, verified=True, primary=True)
    # The demo shopper was first sent by the tea shop, then signed up: one member, not two.
    member_upsert_for_partner(
        partner=shop, external_id="cust-demo",
        data={"email": DEMO_MEMBER_EMAIL, "first_name": "Ada", "last_name": "Lovelace",
              "birthday": date(1990, 12, 10), "phone": "+441234567890"},
        consents={"offers": Channel.EMAIL, "reminders": Channel.EMAIL, "surveys": Channel.EMAIL},
    )
    member = member_attach_user(user=user, email=DEMO_MEMBER_EMAIL)
    return {"member": member, "staff": staff, "partners": partners}
