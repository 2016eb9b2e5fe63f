"""The fake world's models, taken up from the apps they were born in (issue 11): the sandbox
network (``social``), the gateway's ledger (``orders``) and the carrier's labels (``fulfillment``).
Their tables were created by those apps' migrations and keep their names (``db_table``): this
migration changes the state only, and no data moves."""

import django.db.models.deletion
import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("social", "0011_sandbox_network_moves_to_sandbox_app"),
        ("orders", "0007_sandbox_ledger_moves_to_sandbox_app"),
        ("fulfillment", "0006_sandbox_label_moves_to_sandbox_app"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SandboxLabel",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("shipment_id", models.BigIntegerField(unique=True)),
                        ("tracking_number", models.CharField(max_length=32, unique=True)),
                        ("bought_at", models.DateTimeField()),
                        ("ends_in_exception", models.BooleanField(default=False)),
                    ],
                    options={
                        "db_table": "fulfillment_sandboxlabel",
                    },
                ),
                migrations.CreateModel(
                    name="SandboxLedgerEntry",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("idempotency_key", models.CharField(max_length=64, unique=True)),
                        ("operation", models.CharField(max_length=16)),
                        ("token", models.CharField(max_length=255)),
                        ("amount", models.DecimalField(decimal_places=2, max_digits=12)),
                        ("currency", models.CharField(max_length=3)),
                        ("approved", models.BooleanField()),
                        ("reference", models.CharField(max_length=100)),
                        ("decline_code", models.CharField(blank=True, max_length=32)),
                        ("calls", models.PositiveIntegerField(default=1)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        "verbose_name_plural": "sandbox ledger entries",
                        "db_table": "orders_sandboxledgerentry",
                    },
                ),
                migrations.CreateModel(
                    name="SandboxUser",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("handle", models.CharField(max_length=50)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        "db_table": "social_sandboxuser",
                        "constraints": [
                            models.UniqueConstraint(
                                django.db.models.functions.text.Lower("handle"),
                                name="sandboxuser_unique_handle_ci",
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="SandboxPost",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("text", models.TextField()),
                        ("created_at", models.DateTimeField(db_index=True)),
                        (
                            "idempotency_key",
                            models.CharField(blank=True, max_length=100, null=True, unique=True),
                        ),
                        (
                            "edit_of",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="edits",
                                to="sandbox.sandboxpost",
                            ),
                        ),
                        (
                            "in_reply_to",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="replies",
                                to="sandbox.sandboxpost",
                            ),
                        ),
                        (
                            "quote_of",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="quotes",
                                to="sandbox.sandboxpost",
                            ),
                        ),
                        (
                            "repost_of",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="reposts",
                                to="sandbox.sandboxpost",
                            ),
                        ),
                        (
                            "author",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="posts",
                                to="sandbox.sandboxuser",
                            ),
                        ),
                        (
                            "mentions",
                            models.ManyToManyField(
                                blank=True, related_name="mentioned_in", to="sandbox.sandboxuser"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "social_sandboxpost",
                    },
                ),
            ],
        ),
    ]
