"""Campaigns run on several networks (issue 13, item 7): one ``CampaignListing`` per network.

Every existing campaign gets the one listing of its ``platform`` (its key and dates copied).
Then, as migration 0002 does for campaigns, no two listings on one platform hold one hashtag
key at overlapping times: an exclusion constraint on PostgreSQL, triggers on SQLite (which
drops them if Django ever rebuilds ``catalog_campaignlisting``: a later migration altering that
table must create them again; ``catalog/tests/test_listings.py`` fails if they are missing).
"""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

from core.migration_ops import VendorSQL

OVERLAP = (
    "SELECT 1 FROM catalog_campaignlisting c WHERE c.platform = NEW.platform"
    " AND c.hashtag_key = NEW.hashtag_key"
    " AND c.starts_at < NEW.ends_at AND NEW.starts_at < c.ends_at"
)


def list_existing_campaigns(apps: Any, schema_editor: Any) -> None:
    Campaign = apps.get_model("catalog", "Campaign")
    CampaignListing = apps.get_model("catalog", "CampaignListing")
    db = schema_editor.connection.alias
    campaigns = Campaign.objects.using(db).values_list(
        "pk", "platform", "hashtag_key", "starts_at", "ends_at"
    )
    CampaignListing.objects.using(db).bulk_create(
        (
            CampaignListing(
                campaign_id=pk,
                platform=platform,
                hashtag_key=key,
                starts_at=starts_at,
                ends_at=ends_at,
            )
            for pk, platform, key, starts_at, ends_at in campaigns.iterator()
        ),
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [("catalog", "0007_campaign_price_includes_tax")]

    operations = [
        migrations.CreateModel(
            name="CampaignListing",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "platform",
                    models.CharField(
                        choices=[
                            ("sandbox", "Sandbox"),
                            ("x", "X"),
                            ("mastodon", "Mastodon"),
                            ("bluesky", "Bluesky"),
                        ],
                        max_length=16,
                    ),
                ),
                ("hashtag_key", models.CharField(max_length=100)),
                ("starts_at", models.DateTimeField()),
                ("ends_at", models.DateTimeField()),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="listings",
                        to="catalog.campaign",
                    ),
                ),
            ],
            options={
                "ordering": ["campaign", "id"],
                "indexes": [
                    models.Index(fields=["platform", "hashtag_key"], name="campaignlisting_key_idx")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("campaign", "platform"), name="campaignlisting_one_per_platform"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("ends_at__gt", models.F("starts_at"))),
                        name="campaignlisting_ends_after_start",
                    ),
                ],
            },
        ),
        migrations.RunPython(list_existing_campaigns, migrations.RunPython.noop, elidable=False),
        VendorSQL(
            forwards={
                "postgresql": [
                    "CREATE EXTENSION IF NOT EXISTS btree_gist",
                    "ALTER TABLE catalog_campaignlisting ADD CONSTRAINT"
                    " campaignlisting_one_live_per_key EXCLUDE USING gist"
                    " (platform WITH =, hashtag_key WITH =, tstzrange(starts_at, ends_at) WITH &&)",
                ],
                "sqlite": [
                    "CREATE TRIGGER campaignlisting_one_live_per_key_insert BEFORE INSERT ON"
                    f" catalog_campaignlisting WHEN EXISTS ({OVERLAP})"
                    " BEGIN SELECT RAISE(ABORT, 'campaignlisting_one_live_per_key'); END",
                    "CREATE TRIGGER campaignlisting_one_live_per_key_update BEFORE UPDATE OF"
                    " platform, hashtag_key, starts_at, ends_at ON catalog_campaignlisting"
                    f" WHEN EXISTS ({OVERLAP} AND c.id != NEW.id)"
                    " BEGIN SELECT RAISE(ABORT, 'campaignlisting_one_live_per_key'); END",
                ],
            },
            backwards={
                "postgresql": [
                    "ALTER TABLE catalog_campaignlisting"
                    " DROP CONSTRAINT campaignlisting_one_live_per_key",
                ],
                "sqlite": [
                    "DROP TRIGGER campaignlisting_one_live_per_key_insert",
                    "DROP TRIGGER campaignlisting_one_live_per_key_update",
                ],
            },
        ),
    ]
