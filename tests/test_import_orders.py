import io

import pytest
from django.core.management import call_command

from accounts.models import ExternalId, Member
from rewards.models import Order
from rewards.selectors import ledger_discrepancies
from tests.factories import RuleFactory, set_program

pytestmark = pytest.mark.django_db

CSV = """order_id,member,placed_at,currency,total,sku,name,category,quantity,unit_price,email
1001,cust-1,2026-01-05T10:00:00Z,EUR,25.00,TEA-1,Green tea,tea,2,12.50,one@example.com
1002,cust-2,2026-01-06,EUR,30.00,TEA-1,Green tea,tea,1,12.50,
1002,cust-2,2026-01-06,EUR,30.00,CUP-1,Cup,cups,1,17.50,
1003,cust-1,2026-01-07,EUR,99.00,TEA-1,Green tea,tea,1,12.50,
1004,cust-3,2026-01-08,EUR,5.00,TEA-1,Green tea,tea,-1,5.00,
1005,cust-3,not a date,EUR,5.00,TEA-1,Green tea,tea,1,5.00,
1006,alice-1,2026-01-09T08:00:00+01:00,EUR,10.00,TEA-2,Black tea,tea,1,10.00,alice@example.com
"""


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(CSV)
    return path


def run(path, partner="Tea Shop", *extra):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("import_orders", str(path), "--partner", partner, *extra, stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_import_keeps_good_orders_and_reports_bad_rows_by_line(csv_file, tea_shop, alice):
    set_program(pending_days=14, expiry_policy="never")
    RuleFactory(name="1 per EUR")
    code, out, err = run(csv_file)
    assert code == 3
    assert sorted(Order.objects.values_list("order_id", flat=True)) == ["1001", "1002", "1006"]
    assert "line 5: order '1003': total: Does not match the lines" in err
    assert "line 6: order '1004': lines.0.quantity: Must be at least 1." in err
    assert "line 7: order '1005': placed_at:" in err
    assert "7 rows" in out and "3 orders imported" in out and "3 refused" in out and "65 points awarded" in out
    # Old orders are past their return window: their points are available at once.
    one = Member.objects.get(email="one@example.com")
    assert (one.points_available, one.points_pending) == (25, 0)
    # A customer whose email already belongs to a member is linked, not duplicated.
    assert ExternalId.objects.get(external_id="alice-1").member_id == alice.pk
    assert Order.objects.get(order_id="1002").lines.count() == 2
    assert list(ledger_discrepancies()) == []  # every balance equals the sum of its ledger entries


def test_running_the_import_again_counts_nothing_twice(csv_file, tea_shop):
    set_program(pending_days=0, expiry_policy="never")
    RuleFactory(name="1 per EUR")
    run(csv_file)
    members = Member.objects.count()
    code, out, _ = run(csv_file)
    assert "0 orders imported, 3 already there" in out
    assert Member.objects.count() == members
    assert Member.objects.get(email="one@example.com").points_available == 25


def test_without_creating_members_unknown_customers_are_refused_by_line(csv_file, tea_shop):
    set_program(pending_days=0)
    code, out, err = run(csv_file, "Tea Shop", "--no-create-members")
    assert "line 2: order '1001': member: No member with external_id 'cust-1'." in err
    assert not Order.objects.exists()


def test_a_file_without_the_required_columns_is_refused(tmp_path, tea_shop):
    from django.core.management.base import CommandError

    path = tmp_path / "bad.csv"
    path.write_text("order,who\n1,2\n")
    with pytest.raises(CommandError, match="The header lacks: order_id, member"):
        run(path)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_import_gives_the_same_result_as_one_process(tea_shop):
    from rewards.importing import import_orders

    set_program(pending_days=0, expiry_policy="never")
    RuleFactory(name="1 per EUR")
    rows = ["order_id,member,placed_at,currency,total,sku,name,category,quantity,unit_price"]
    for number in range(1, 601):
        rows.append(f"{number},cust-{number % 37},2026-01-05,EUR,10.00,TEA-1,Tea,tea,1,10.00")
    rows.append("601,cust-1,2026-01-05,EUR,99.00,TEA-1,Tea,tea,1,10.00")  # a bad total, on line 602
    report = import_orders(partner=tea_shop, lines=[row + "\n" for row in rows], workers=2, batch_size=50)
    assert (report.rows, report.orders_accepted, report.orders_rejected, report.members_created) == (601, 600, 1, 37)
    assert report.problems[0].startswith("line 602: order '601': total:")
    assert Order.objects.count() == 600
    assert sum(Member.objects.values_list("points_available", flat=True)) == 6000
    again = import_orders(partner=tea_shop, lines=[row + "\n" for row in rows], workers=2, batch_size=50)
    assert (again.orders_accepted, again.orders_duplicate) == (0, 600)
    assert list(ledger_discrepancies()) == []  # every balance equals the sum of its ledger entries


def test_each_batch_reads_the_partners_customer_ids_once(tmp_path, tea_shop):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    set_program(pending_days=0, expiry_policy="never")
    RuleFactory(name="1 per EUR")
    rows = ["order_id,member,placed_at,currency,total,sku,name,category,quantity,unit_price"]
    rows += [f"{number},cust-{number % 7},2026-01-05,EUR,10.00,TEA-1,Tea,tea,1,10.00" for number in range(1, 121)]
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(rows) + "\n")
    with CaptureQueriesContext(connection) as queries:
        code, out, _ = run(path, "Tea Shop", "--batch-size", "60", "--workers", "1")
    assert code == 0 and "120 orders imported" in out
    # members_ensure_for_partner reads them; the order writer takes its answer instead of reading again.
    reads = [q for q in queries if q["sql"].startswith('SELECT external_id, member_id FROM "accounts_externalid"')]
    assert len(reads) == 2


def test_an_order_still_protects_its_member_from_deletion(csv_file, tea_shop):
    from django.db.models import ProtectedError

    set_program(pending_days=0, expiry_policy="never")
    RuleFactory(name="1 per EUR")
    run(csv_file)
    member = Order.objects.get(order_id="1001").member
    # The order's member and partner have no database constraint of their own (the activity's
    # hold them); Django still refuses to delete what an order points at.
    with pytest.raises(ProtectedError):
        member.delete()
    with pytest.raises(ProtectedError):
        tea_shop.delete()
