"""The order list's date-range filter: two date inputs, whole days in the merchant's time zone.

Thin: it reads ``created_from`` and ``created_to`` (``YYYY-MM-DD``, what a browser's date input
sends) and calls ``orders.search.order_created_between``. A value that is not a date is
ignored and shown as such, never an error page.
"""

from collections.abc import Iterator
from datetime import date, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.admin import ListFilter
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from catalog.models import Merchant
from core.scoping import merchant_id_of
from orders.models import Order
from orders.search import order_created_between

FROM_PARAM = "created_from"
TO_PARAM = "created_to"


# Days a person may mean; beyond them a bound is ignored (and never overflows a datetime).
_FIRST_DAY, _LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)


def _day(value: object) -> date | None:
    try:
        day = date.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None
    return day if day is not None and _FIRST_DAY <= day <= _LAST_DAY else None


def request_time_zone(request: HttpRequest) -> tzinfo:
    """The zone whose days the user means: their merchant's for staff; for operators (who see
    every merchant) the active one."""
    merchant_id = merchant_id_of(request)
    if merchant_id is None:
        return timezone.get_current_timezone()
    name = Merchant.objects.filter(pk=merchant_id).values_list("time_zone", flat=True).first()
    return ZoneInfo(name) if name else timezone.get_current_timezone()


def date_range_ordering(request: HttpRequest) -> tuple[str, ...] | None:
    """With a date range, the list is newest first by creation time, not by id: the same order
    to a person, but the one the created-at indexes hold, so a page of a range long ago is read
    from its place in the index, never found by walking back from the newest order."""
    if request.GET.get(FROM_PARAM) or request.GET.get(TO_PARAM):
        return ("-created_at", "-id")
    return None


class CreatedDateRangeFilter(ListFilter):
    """Orders created from one day to another (both included), in the merchant's time zone."""

    title = "date created"
    template = "admin/orders/order/date_range_filter.html"

    def __init__(
        self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any
    ) -> None:
        super().__init__(request, params, model, model_admin)
        for name in (FROM_PARAM, TO_PARAM):
            if name in params:
                value = params.pop(name)  # a list of values since Django 5.0
                self.used_parameters[name] = value[-1] if isinstance(value, list) else value
        self.start = _day(self.used_parameters.get(FROM_PARAM))
        self.end = _day(self.used_parameters.get(TO_PARAM))
        # Staff's zone costs a query: read only when a day is given. Operators' is at hand.
        ranged = self.start is not None or self.end is not None
        operator = merchant_id_of(request) is None
        self.zone = request_time_zone(request) if ranged or operator else None

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return [FROM_PARAM, TO_PARAM]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if self.zone is None or (self.start is None and self.end is None):
            return queryset
        return order_created_between(queryset, self.start, self.end, zone=self.zone)

    def choices(self, changelist: ChangeList) -> Iterator[dict[str, Any]]:
        """One "choice": what the form needs (the values, what was not a date, the other
        parameters of the list to keep, the zone, and the link that clears the range)."""
        keep = [
            (name, value)
            for name, values in changelist.filter_params.items()
            if name not in (FROM_PARAM, TO_PARAM, PAGE_VAR)
            for value in values
        ]
        given = {name: self.used_parameters.get(name, "") for name in (FROM_PARAM, TO_PARAM)}
        yield {
            "from_value": self.start.isoformat() if self.start else "",
            "to_value": self.end.isoformat() if self.end else "",
            "invalid": [value for value in given.values() if value and _day(value) is None],
            "keep": keep,
            # Known once a day is given: the list costs no query for it otherwise.
            "zone": str(self.zone) if self.zone else "",
            "clear": changelist.get_query_string(remove=[FROM_PARAM, TO_PARAM]),
            "selected": bool(self.start or self.end),
        }
