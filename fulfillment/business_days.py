"""Business days for two-day delivery: weekdays that are not holidays (DESIGN §7).

The holiday calendar is the ``holidays`` package's, for ``HASHCART["HOLIDAY_COUNTRY"]`` and,
when set, ``HASHCART["HOLIDAY_SUBDIVISION"]`` (a state). Carriers do not deliver on them.
"""

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings


@lru_cache(maxsize=16)
def _calendar(country: str, subdivision: str | None) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision)


def is_business_day(day: date) -> bool:
    conf = settings.HASHCART
    calendar = _calendar(conf["HOLIDAY_COUNTRY"], conf["HOLIDAY_SUBDIVISION"] or None)
    return day.weekday() < 5 and day not in calendar


def next_business_day(day: date) -> date:
    """The first business day strictly after ``day``."""
    day += timedelta(days=1)
    while not is_business_day(day):
        day += timedelta(days=1)
    return day


def add_business_days(day: date, count: int) -> date:
    for _ in range(count):
        day = next_business_day(day)
    return day


def ship_by_date(*, paid_at: datetime, time_zone: str, cutoff: time) -> date:
    """The day a paid order must leave: the same business day if paid before the merchant's local
    cut-off, else the next business day."""
    local = paid_at.astimezone(ZoneInfo(time_zone))
    if is_business_day(local.date()) and local.time() < cutoff:
        return local.date()
    return next_business_day(local.date())
