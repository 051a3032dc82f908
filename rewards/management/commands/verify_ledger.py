import sys

from django.core.management.base import BaseCommand

from accounts.models import Member
from rewards.selectors import ledger_discrepancies


class Command(BaseCommand):
    help = (
        "Prove that every member's cached balances equal the sums of their ledger entries (and their "
        "open lots). Exits 1 and lists the members that differ."
    )

    def handle(self, *args, **options):
        bad = list(ledger_discrepancies())
        if not bad:
            count = Member.objects.count()
            self.stdout.write(f"{count} members: every balance equals the sum of its ledger entries.")
            return
        for row in bad:
            self.stderr.write(
                f"member {row['pk']}: available {row['points_available']} (ledger {row['ledger_available']}, "
                f"lots {row['lots_remaining']}), pending {row['points_pending']} (ledger {row['ledger_pending']}), "
                f"owed {row['points_owed']} (ledger {row['ledger_owed']})"
            )
        self.stderr.write(f"{len(bad)} members differ from their ledger.")
        sys.exit(1)
