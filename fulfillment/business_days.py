"""Business days for two-day delivery: weekdays that are neither holidays nor closures (§7).

The holiday calendar is the ``holidays`` package's, for ``HASHCART["HOLIDAY_COUNTRY"]`` and,
when set, ``HASHCART["HOLIDAY_SUBDIVISION"]`` (a state). Closure dates are the operators' own
(``ClosureDate``, edited in the admin). Callers that compute several dates read the closures
once (``closures()``) and pass them along.
"""

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings


@lru_cache(maxsize=16)
def _calendar(country: str, subdivision: str | None) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision)


def closures() -> frozenset[date]:
    """The operators' closure dates."""
    from fulfillment.models import ClosureDate

    return frozenset(ClosureDate.objects.values_list("day", flat=True))


def is_business_day(day: date, closed: frozenset[date] | None = None) -> bool:
    conf = settings.HASHCART
    calendar = _calendar(conf["HOLIDAY_COUNTRY"], conf["HOLIDAY_SUBDIVISION"] or None)
    closed = closures() if closed is None else closed
    return day.weekday() < 5 and day not in calendar and day not in closed


def next_business_day(day: date, closed: frozenset[date] | None = None) -> date:
    """The first business day strictly after ``day``."""
    closed = closures() if closed is None else closed
    day += timedelta(days=1)
    while not is_business_day(day, closed):
        day += timedelta(days=1)
    return day


def add_business_days(day: date, count: int, closed: frozenset[date] | None = None) -> date:
    closed = closures() if closed is None else closed
    for _ in range(count):
        day = next_business_day(day, closed)
    return day


def business_days_between(start: date, end: date, closed: frozenset[date] | None = None) -> int:
    """Business days after ``start`` up to and including ``end`` (negative if ``end`` is
    earlier): how far off a date is, for the SLA report."""
    closed = closures() if closed is None else closed
    sign, (low, high) = (1, (start, end)) if end >= start else (-1, (end, start))
    count, day = 0, low
    while day < high:
        day += timedelta(days=1)
        count += is_business_day(day, closed)
    return sign * count


def ship_by_date(
    *, paid_at: datetime, time_zone: str, cutoff: time, closed: frozenset[date] | None = None
) -> date:
    """The day a paid order must leave: the same business day if paid before the merchant's local
    cut-off, else the next business day."""
    closed = closures() if closed is None else closed
    local = paid_at.astimezone(ZoneInfo(time_zone))
    if is_business_day(local.date(), closed) and local.time() < cutoff:
        return local.date()
    return next_business_day(local.date(), closed)
