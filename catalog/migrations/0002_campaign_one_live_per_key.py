"""No two campaigns on one platform hold one hashtag key at overlapping times.

PostgreSQL: an exclusion constraint over the campaign's time range (needs btree_gist).
SQLite (the embedded demo mode): triggers that abort the overlapping write. SQLite drops
triggers when Django rebuilds a table, so a later migration that alters ``catalog_campaign``
must create them again; ``catalog/tests/test_constraints.py`` fails if they are missing.
"""

from django.db import migrations

from core.migration_ops import VendorSQL

OVERLAP = (
    "SELECT 1 FROM catalog_campaign c WHERE c.platform = NEW.platform"
    " AND c.hashtag_key = NEW.hashtag_key"
    " AND c.starts_at < NEW.ends_at AND NEW.starts_at < c.ends_at"
)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [
        VendorSQL(
            forwards={
                "postgresql": [
                    "CREATE EXTENSION IF NOT EXISTS btree_gist",
                    "ALTER TABLE catalog_campaign ADD CONSTRAINT campaign_one_live_per_key"
                    " EXCLUDE USING gist (platform WITH =, hashtag_key WITH =,"
                    " tstzrange(starts_at, ends_at) WITH &&)",
                ],
                "sqlite": [
                    "CREATE TRIGGER campaign_one_live_per_key_insert BEFORE INSERT ON"
                    f" catalog_campaign WHEN EXISTS ({OVERLAP})"
                    " BEGIN SELECT RAISE(ABORT, 'campaign_one_live_per_key'); END",
                    "CREATE TRIGGER campaign_one_live_per_key_update BEFORE UPDATE OF"
                    " platform, hashtag_key, starts_at, ends_at ON catalog_campaign"
                    f" WHEN EXISTS ({OVERLAP} AND c.id != NEW.id)"
                    " BEGIN SELECT RAISE(ABORT, 'campaign_one_live_per_key'); END",
                ],
            },
            backwards={
                "postgresql": [
                    "ALTER TABLE catalog_campaign DROP CONSTRAINT campaign_one_live_per_key",
                ],
                "sqlite": [
                    "DROP TRIGGER campaign_one_live_per_key_insert",
                    "DROP TRIGGER campaign_one_live_per_key_update",
                ],
            },
        ),
    ]
