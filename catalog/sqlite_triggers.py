"""The one-live-campaign-per-key rule on SQLite, kept in place after every ``migrate``.

On PostgreSQL the rule is an exclusion constraint (migrations 0002 and 0008) and survives any
later migration. On SQLite (the embedded demo) it is a pair of triggers per table, and SQLite
drops a table's triggers whenever Django rebuilds the table, which it does for most
``AddField``/``AlterField`` operations: migration 0007 silently removed the campaign's. Rather
than trust every future migration to remember, ``triggers_ensure`` runs after each ``migrate``
(``post_migrate``, connected in ``catalog.apps``) and creates whichever trigger is missing.
"""

from typing import Any

from django.db import connections

# (table, trigger name prefix): the rows of each table must not overlap on one platform's key.
_GUARDED = (
    ("catalog_campaign", "campaign_one_live_per_key"),
    ("catalog_campaignlisting", "campaignlisting_one_live_per_key"),
)


def _statements(table: str, name: str) -> list[str]:
    overlap = (
        f"SELECT 1 FROM {table} c WHERE c.platform = NEW.platform"  # noqa: S608 (constants)
        " AND c.hashtag_key = NEW.hashtag_key"
        " AND c.starts_at < NEW.ends_at AND NEW.starts_at < c.ends_at"
    )
    return [
        f"CREATE TRIGGER IF NOT EXISTS {name}_insert BEFORE INSERT ON {table}"
        f" WHEN EXISTS ({overlap}) BEGIN SELECT RAISE(ABORT, '{name}'); END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_update BEFORE UPDATE OF"
        f" platform, hashtag_key, starts_at, ends_at ON {table}"
        f" WHEN EXISTS ({overlap} AND c.id != NEW.id)"
        f" BEGIN SELECT RAISE(ABORT, '{name}'); END",
    ]


def triggers_ensure(*, using: str = "default", **_: Any) -> None:
    """Create the missing overlap triggers on SQLite (a no-op on any other database, and for a
    table not migrated yet). Idempotent: the receiver of ``post_migrate``."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    tables = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        for table, name in _GUARDED:
            if table in tables:
                for statement in _statements(table, name):
                    cursor.execute(statement)
