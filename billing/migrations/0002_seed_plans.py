"""The four tiers, with the prices and limits on the pricing page. Staff edit them in the admin afterwards."""

from django.db import migrations


def seed(apps, schema_editor):
    from billing.plans import plans_seed

    plans_seed(apps.get_model("billing", "Plan"))


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
