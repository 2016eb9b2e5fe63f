"""``AnyOf``: a column against a list of values, sent as one array on PostgreSQL.

``filter(pk__in=ids)`` writes a placeholder per value: with the hundreds of ids of a batch, the
statement is long to build, to convert for the driver and to plan, every time. ``AnyOf`` writes
``column = ANY(%s::<type>[])`` with the list as one parameter (the column's index is used as
for ``IN``); elsewhere it is ``IN (...)``. Used as a filter expression:
``Post.objects.filter(AnyOf(F("pk"), ids))``.
"""

from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Lookup
from django.db.models.sql.compiler import SQLCompiler


class AnyOf(Lookup):
    lookup_name = "any_of"
    prepare_rhs = False

    def get_db_prep_lookup(self, value: Any, connection: BaseDatabaseWrapper) -> Any:
        return ("%s", [value])

    def _values(self) -> list[Any]:
        values = list(dict.fromkeys(self.rhs))
        if not values:
            raise EmptyResultSet
        return values

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = self._values()
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", (*lhs_params, *values)

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        db_type = self.lhs.output_field.cast_db_type(connection)
        return f"{lhs} = ANY(%s::{db_type}[])", (*lhs_params, self._values())


class AnyOfSubquery(Lookup):
    """A column against the values a subquery returns, fetched once on PostgreSQL.

    ``column IN (subquery)`` leaves the planner free to join, and with ``ORDER BY … LIMIT`` it
    may walk the whole primary key looking for the subquery's rows when it misjudges how many
    there are. ``column = ANY(ARRAY(subquery))`` runs the subquery first, once, and then looks
    its values up in the column's index. Elsewhere it is ``IN``. Used as a filter expression:
    ``Order.objects.filter(AnyOfSubquery(F("pk"), ids_queryset))``.
    """

    lookup_name = "any_of_subquery"
    prepare_rhs = False

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = compiler.compile(self.rhs)
        return f"{lhs} IN {rhs}", (*lhs_params, *rhs_params)

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = compiler.compile(self.rhs)
        return f"{lhs} = ANY(ARRAY{rhs})", (*lhs_params, *rhs_params)
