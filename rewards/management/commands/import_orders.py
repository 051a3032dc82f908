import os
import sys

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Partner
from core import bulk
from core.errors import DomainError
from rewards.importing import import_orders


class Command(BaseCommand):
    help = (
        "Backfill order history from a CSV file (one row per order line; see rewards/importing.py for the "
        "columns). Streams the file, reports bad rows by line number, keeps the good ones, and is safe to re-run. "
        "Exits 0 when every order was imported or already there, 3 when some rows were refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file, or - for standard input.")
        parser.add_argument("--partner", required=True, help="The partner whose order and customer ids these are.")
        parser.add_argument("--no-create-members", action="store_true",
                            help="Refuse orders of customers the partner never sent, instead of creating them.")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument(
            "--workers", type=int, default=None,
            help="Processes that record orders (default: the number of CPUs on PostgreSQL, 1 on SQLite).",
        )

    def handle(self, *args, file, partner, no_create_members, batch_size, workers, **options):
        if workers is None:
            workers = (os.cpu_count() or 1) if bulk.parallel_writers() else 1
        partner_obj = Partner.objects.filter(name=partner).first()
        if partner_obj is None:
            raise CommandError(f"No partner named {partner!r}; create it with partner_create.")
        handle = sys.stdin if file == "-" else open(file, newline="", encoding="utf-8-sig")  # noqa: SIM115
        try:
            report = import_orders(partner=partner_obj, lines=handle, batch_size=batch_size,
                                   create_members=not no_create_members, workers=max(1, workers),
                                   progress=self._progress)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        except RuntimeError as exc:
            raise CommandError(f"{exc}; see the worker's error above. Orders written so far are kept; "
                               "run the import again to continue.") from None
        finally:
            if handle is not sys.stdin:
                handle.close()
        self.stderr.write("")
        for problem in report.problems:
            self.stderr.write(problem)
        self.stdout.write(
            f"{report.rows:,} rows in {report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s): "
            f"{report.orders_accepted:,} orders imported, {report.orders_duplicate:,} already there, "
            f"{report.orders_rejected:,} refused; {report.members_created:,} new members; "
            f"{report.points_awarded:,} points awarded."
        )
        if report.orders_rejected:
            sys.exit(3)

    def _progress(self, report):
        self.stderr.write(
            f"\r{report.rows:>12,} rows  {report.rows_per_second:>8,.0f} rows/s  {report.orders_rejected:,} refused",
            ending="",
        )
        self.stderr.flush()
