"""Import the CDNOW purchase histories (or a file in the same layout) as orders, to try the
insights on real data: `python manage.py import_cdnow ../shared/data/cdnow/CDNOW_sample.txt
--partner "CDNOW"`. Each line becomes one order of its customer (noon UTC on its date) through the
same importer as `import_orders`; running it again skips what is there."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Partner
from accounts.services import partner_create
from rewards.importing import import_orders
from rewards.program import current_program

COLUMNS = "order_id,member,placed_at,currency,total,sku,quantity,unit_price,name,category\n"


def cdnow_lines(handle, *, currency: str):
    """CSV lines for ``import_orders`` from CDNOW text: ``customer date cds dollars`` (the master
    file, with a header) or ``customer sample date cds dollars`` (the sample, without)."""
    yield COLUMNS
    seen: dict[tuple[str, str], int] = {}
    for number, raw in enumerate(handle, start=1):
        parts = raw.split()
        if not parts or not parts[0].isdigit():
            continue  # the master file's header
        if len(parts) == 5:
            customer, _, day, cds, dollars = parts
        elif len(parts) == 4:
            customer, day, cds, dollars = parts
        else:
            raise CommandError(f"Line {number}: expected 4 or 5 columns, found {len(parts)}.")
        count = seen[(customer, day)] = seen.get((customer, day), 0) + 1
        total = f"{float(dollars):.2f}"
        placed = f"{day[:4]}-{day[4:6]}-{day[6:]}T12:00:00+00:00"
        yield (f"cd-{customer}-{day}-{count},cdnow-{int(customer)},{placed},{currency},{total},CD,1,{total},"
               f"{int(cds)} CDs,music\n")


class Command(BaseCommand):
    help = "Import CDNOW purchase histories (or any file in that layout) as orders."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--partner", default="CDNOW", help="Created when missing.")
        parser.add_argument("--currency", default=None, help="Default: the program's currency.")

    def handle(self, *args, file, partner, currency, **options):
        currency = currency or current_program().settings.currency
        partner_obj = Partner.objects.filter(name=partner).first() or partner_create(name=partner)
        with open(file, encoding="utf-8") as handle:
            report = import_orders(partner=partner_obj, lines=cdnow_lines(handle, currency=currency),
                                   batch_size=1000, create_members=True, workers=1)
        for problem in report.problems:
            self.stderr.write(problem)
        self.stdout.write(f"{report.orders_accepted:,} orders imported, {report.orders_duplicate:,} already there, "
                          f"{report.orders_rejected:,} refused; {report.members_created:,} new members.")
