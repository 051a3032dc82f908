"""Demo insights for ``seed_demo``: members get join dates before their first order (the demo
creates everyone at once), and the badges for years of membership that those dates earn; then
yesterday's snapshot is computed so the staff pages show curves."""

import random
from datetime import timedelta

from django.db.models import Min
from django.utils import timezone

from accounts.models import Member
from insights.models import Snapshot
from insights.services import snapshot_compute
from rewards.services.progress import badges_evaluate


def seed(*, rng: random.Random, stdout, context: dict) -> dict:
    if Snapshot.objects.exists():
        return {}
    now = timezone.now()
    first_orders = dict(Member.objects.annotate(first=Min("orders__placed_at")).values_list("pk", "first"))
    changed = []
    for member in Member.objects.filter(pk__in=list(first_orders)):
        first = first_orders[member.pk]
        member.created_at = (first or now) - timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 23))
        changed.append(member)
    Member.objects.bulk_update(changed, ["created_at"], batch_size=500)
    badges_evaluate(member_ids=[member.pk for member in changed])  # "Old friend" for those who joined a year ago
    snapshot_compute()
    return {}
