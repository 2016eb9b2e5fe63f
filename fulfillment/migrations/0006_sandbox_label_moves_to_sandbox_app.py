"""The sandbox carrier's labels move to the ``sandbox`` app (issue 11). The table stays, as
``fulfillment_sandboxlabel``: the model leaves this app's state only."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("fulfillment", "0005_shipment_bought_tracking_unique"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="SandboxLabel")],
        ),
    ]
