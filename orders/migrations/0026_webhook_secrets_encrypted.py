"""Webhook endpoints' signing secrets encrypted at rest (``core.crypto``): the columns renamed
``*_encrypted``, widened for a Fernet token, and every secret stored in clear encrypted."""

from typing import Any

from django.db import migrations, models

from core.crypto import text_decrypt, text_encrypt

CLEAR_PREFIX = "whsec_"
FIELDS = ("secret_encrypted", "previous_secret_encrypted")


def encrypt(apps: Any, schema_editor: Any) -> None:
    endpoint_model = apps.get_model("orders", "WebhookEndpoint")
    for endpoint in endpoint_model.objects.only(*FIELDS).iterator():
        changed = [name for name in FIELDS if getattr(endpoint, name).startswith(CLEAR_PREFIX)]
        for name in changed:
            setattr(endpoint, name, text_encrypt(getattr(endpoint, name)))
        if changed:
            endpoint.save(update_fields=changed)


def decrypt(apps: Any, schema_editor: Any) -> None:
    endpoint_model = apps.get_model("orders", "WebhookEndpoint")
    for endpoint in endpoint_model.objects.only(*FIELDS).iterator():
        changed = [
            name
            for name in FIELDS
            if getattr(endpoint, name) and not getattr(endpoint, name).startswith(CLEAR_PREFIX)
        ]
        for name in changed:
            setattr(endpoint, name, text_decrypt(getattr(endpoint, name)))
        if changed:
            endpoint.save(update_fields=changed)


class Migration(migrations.Migration):
    dependencies = [("orders", "0025_sales_report_indexes")]

    operations = [
        migrations.RenameField(
            model_name="webhookendpoint", old_name="secret", new_name="secret_encrypted"
        ),
        migrations.RenameField(
            model_name="webhookendpoint",
            old_name="previous_secret",
            new_name="previous_secret_encrypted",
        ),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="secret_encrypted",
            field=models.CharField(editable=False, max_length=255),
        ),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="previous_secret_encrypted",
            field=models.CharField(blank=True, editable=False, max_length=255),
        ),
        migrations.RunPython(encrypt, decrypt, elidable=False),
    ]
