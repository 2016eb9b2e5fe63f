"""The sandbox gateway's ledger moves to the ``sandbox`` app (issue 11). Its table stays, as
``orders_sandboxledgerentry``: the model leaves this app's state only."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0006_payment_op_failed_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="SandboxLedgerEntry")],
        ),
    ]
