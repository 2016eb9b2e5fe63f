"""Migration operations for constraints Django cannot declare portably."""

from typing import Any

from django.db import migrations


class VendorSQL(migrations.RunSQL):
    """Run the SQL written for the current database vendor; vendors without an entry run nothing.

    Used for rules that need each database's own tool, such as an exclusion constraint on
    PostgreSQL and a trigger on SQLite.
    """

    def __init__(
        self, forwards: dict[str, list[str]], backwards: dict[str, list[str]], **kwargs: Any
    ) -> None:
        super().__init__(sql=[], reverse_sql=[], **kwargs)
        self.forwards = forwards
        self.backwards = backwards

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (
            self.__class__.__name__,
            [],
            {"forwards": self.forwards, "backwards": self.backwards},
        )

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        for statement in self.forwards.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        for statement in self.backwards.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    def describe(self) -> str:
        return "Vendor-specific SQL"
