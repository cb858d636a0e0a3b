"""Install pgvector: first a readable error if the server lacks it, then CREATE EXTENSION vector."""

from django.db import migrations
from pgvector.django import VectorExtension


def require_pgvector(apps, schema_editor):
    from core.database import pgvector_require_available

    pgvector_require_available(schema_editor.connection)


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.RunPython(require_pgvector, migrations.RunPython.noop, elidable=False),
        VectorExtension(),
    ]
