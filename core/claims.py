"""Work a worker takes from a table (a webhook try, a message): it sets the row's ``claimed_until``
while it works; a worker that dies leaves the claim to run out, and the row to be taken again."""

from datetime import datetime

from django.db.models import Q


def unclaimed(now: datetime) -> Q:
    """Rows no worker holds: never claimed, or whose claim has run out."""
    return Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)
