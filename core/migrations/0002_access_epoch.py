"""The access epoch without Redis: a sequence, bumped with nextval and read with last_value (see core.epoch).

A sequence, not a row: nextval takes no row lock and is not rolled back, and last_value is read by every session
as soon as it moves, which is all the epoch needs (it only has to change)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("core", "0001_pgvector")]
    operations = [
        migrations.RunSQL(
            "CREATE SEQUENCE core_access_epoch MINVALUE 1 START 1",
            "DROP SEQUENCE core_access_epoch",
        ),
    ]
