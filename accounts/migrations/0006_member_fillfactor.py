"""Members' pages are filled to 70%: a balance update (every batch of orders rewrites the member's
row) then stays on its page as a HOT update, instead of adding an entry to each of the table's six
indexes. Pages written before keep their rows until they are rewritten (VACUUM FULL, or a restore)."""

from django.db import migrations

from core import bulk


def leave_room(apps, schema_editor):
    bulk.leave_room_for_updates(schema_editor, apps.get_model("accounts", "Member")._meta.db_table, 70)


def fill_up(apps, schema_editor):
    bulk.leave_room_for_updates(schema_editor, apps.get_model("accounts", "Member")._meta.db_table, 100)


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0005_externalid_partner_index_dropped"),
    ]

    operations = [
        migrations.RunPython(leave_room, fill_up),
    ]
