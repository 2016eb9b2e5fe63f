"""A new campaign's platform defaults to ``HASHCART["DEFAULT_PLATFORM"]`` (the sandbox was
written in the model). A Python default is not in the database: state only, so that SQLite does
not rebuild the table (and lose migration 0002's triggers) for nothing."""

from django.db import migrations, models

import catalog.models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0003_time_zone_validated_not_choices"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="campaign",
                    name="platform",
                    field=models.CharField(
                        choices=[("sandbox", "Sandbox"), ("x", "X"), ("mastodon", "Mastodon")],
                        default=catalog.models.default_platform,
                        max_length=16,
                    ),
                ),
            ],
        ),
    ]
