"""``Order.furthest_stage``: how far each sale went (paid, shipped, delivered), so the sales
report reads its funnel from ``order_merchant_created_idx`` instead of probing the audit rows of
every cancelled or refunded order. Existing orders get it from their status and, where the
status hides it, their audit trail: a cancelled order was paid if it has a ``paid`` row, a
refunded one delivered if it has a ``delivered`` row (what the report read until now).

Also ``order_refunded_idx``: the refunded orders alone, for the report's refunds."""

from django.db import migrations, models
from django.db.models import Case, Exists, OuterRef, When

# The stages' values (``orders.models.order.OrderStage``), frozen for this migration.
PAID, SHIPPED, DELIVERED = 1, 2, 3


def furthest_stage_fill(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    OrderEvent = apps.get_model("orders", "OrderEvent")

    def had(kind: str) -> Exists:
        return Exists(OrderEvent.objects.filter(order_id=OuterRef("pk"), kind=kind))

    Order.objects.filter(status="paid").update(furthest_stage=PAID)
    Order.objects.filter(status="shipped").update(furthest_stage=SHIPPED)
    Order.objects.filter(status="delivered").update(furthest_stage=DELIVERED)
    # Only shipped orders are refunded; delivered too if the carrier said so.
    Order.objects.filter(status__in=["partially_refunded", "refunded"]).update(
        furthest_stage=Case(When(had("delivered"), then=DELIVERED), default=SHIPPED)
    )
    Order.objects.filter(had("paid"), status="cancelled").update(furthest_stage=PAID)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_support_search"),
        ("catalog", "0010_campaign_low_stock_threshold"),
        ("orders", "0026_webhook_secrets_encrypted"),
        ("social", "0013_bluesky_platform"),
    ]

    operations = [
        # The index is built once, after the fill, rather than updated row by row during it.
        migrations.RemoveIndex(model_name="order", name="order_merchant_created_idx"),
        migrations.AddField(
            model_name="order",
            name="furthest_stage",
            field=models.PositiveSmallIntegerField(
                choices=[(0, "Not paid"), (1, "Paid"), (2, "Shipped"), (3, "Delivered")],
                default=0,
                editable=False,
            ),
        ),
        migrations.RunPython(furthest_stage_fill, migrations.RunPython.noop, elidable=True),
        # ``furthest_stage`` in place of ``status``: the funnel and revenue read it alone.
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                fields=["merchant", "created_at", "id"],
                include=(
                    "platform",
                    "currency",
                    "furthest_stage",
                    "confirmed_at",
                    "quantity",
                    "total",
                    "tax_total",
                    "campaign",
                ),
                name="order_merchant_created_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                condition=models.Q(("refunded_total__gt", 0)),
                fields=["merchant", "id"],
                include=("platform", "currency", "campaign"),
                name="order_refunded_idx",
            ),
        ),
    ]
