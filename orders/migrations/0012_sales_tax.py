"""Sales tax (issue 12, item 5; DESIGN §3.8): the rates table, loaded from the shipped CSV, and
an order's subtotal, tax lines and tax total. Existing orders had no tax: subtotal = total."""

import django.db.models.expressions
from django.db import migrations, models
from django.db.models import F

from orders.tax.rates import SHIPPED, rates_read


def existing_orders_untaxed(apps, schema_editor):
    apps.get_model("orders", "Order").objects.update(subtotal=F("total"))


def shipped_rates_load(apps, schema_editor):
    TaxRate = apps.get_model("orders", "TaxRate")
    with SHIPPED.open(newline="", encoding="utf-8") as stream:
        rows = rates_read(stream)
    TaxRate.objects.bulk_create(
        TaxRate(
            state=row.state,
            zip_prefix=row.zip_prefix,
            jurisdiction=row.jurisdiction,
            rate=row.rate,
            source=row.source,
            effective_date=row.effective_date,
        )
        for row in rows
    )


def rates_unload(apps, schema_editor):
    apps.get_model("orders", "TaxRate").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_fit_external_lengths"),
        ("catalog", "0007_campaign_price_includes_tax"),
        ("orders", "0011_refunds"),
        ("social", "0012_post_outcome_owned_by_decider"),
    ]

    operations = [
        migrations.CreateModel(
            name="TaxRate",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("state", models.CharField(max_length=2)),
                ("zip_prefix", models.CharField(blank=True, max_length=3)),
                ("jurisdiction", models.CharField(max_length=100)),
                ("rate", models.DecimalField(decimal_places=5, max_digits=7)),
                ("source", models.CharField(max_length=200)),
                ("effective_date", models.DateField()),
            ],
        ),
        migrations.RemoveConstraint(
            model_name="order",
            name="order_total_is_price_times_quantity",
        ),
        migrations.AddField(
            model_name="order",
            name="price_includes_tax",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="order",
            name="subtotal",
            field=models.DecimalField(decimal_places=2, max_digits=12, null=True),
        ),
        migrations.AddField(
            model_name="order",
            name="tax_lines",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="order",
            name="tax_total",
            field=models.DecimalField(decimal_places=2, default=0, max_digits=12),
        ),
        migrations.RunPython(existing_orders_untaxed, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="order",
            name="subtotal",
            field=models.DecimalField(decimal_places=2, max_digits=12),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("unit_price__gt", 0),
                    ("tax_total__gte", 0),
                    (
                        "subtotal",
                        django.db.models.expressions.CombinedExpression(
                            models.F("unit_price"), "*", models.F("quantity")
                        ),
                    ),
                    models.Q(
                        models.Q(
                            ("price_includes_tax", False),
                            (
                                "total",
                                django.db.models.expressions.CombinedExpression(
                                    models.F("subtotal"), "+", models.F("tax_total")
                                ),
                            ),
                        ),
                        models.Q(("price_includes_tax", True), ("total", models.F("subtotal"))),
                        _connector="OR",
                    ),
                ),
                name="order_total_is_price_times_quantity",
            ),
        ),
        migrations.AddConstraint(
            model_name="taxrate",
            constraint=models.UniqueConstraint(
                fields=("state", "zip_prefix", "jurisdiction"), name="taxrate_unique"
            ),
        ),
        migrations.AddConstraint(
            model_name="taxrate",
            constraint=models.CheckConstraint(
                condition=models.Q(("rate__gte", 0), ("rate__lt", 1)), name="taxrate_rate_fraction"
            ),
        ),
        migrations.AddConstraint(
            model_name="taxrate",
            constraint=models.CheckConstraint(
                condition=models.Q(("state__regex", "^[A-Z]{2}$")), name="taxrate_state"
            ),
        ),
        migrations.AddConstraint(
            model_name="taxrate",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("zip_prefix", ""), ("zip_prefix__regex", "^[0-9]{3}$"), _connector="OR"
                ),
                name="taxrate_zip_prefix",
            ),
        ),
        migrations.RunPython(shipped_rates_load, rates_unload),
    ]
