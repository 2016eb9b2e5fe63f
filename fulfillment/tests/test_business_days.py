"""Ship-by and promised delivery in business days (DESIGN §7): cut-off, weekends, holidays,
time zones. 2026: 4 Sep is a Friday, 7 Sep is Labor Day, 26 Nov is Thanksgiving."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from fulfillment.business_days import (
    add_business_days,
    business_days_between,
    is_business_day,
    ship_by_date,
)
from fulfillment.models import ClosureDate

pytestmark = pytest.mark.django_db

NY = "America/New_York"
CUTOFF = time(14, 0)


def _at(day: str, clock: str, zone: str = NY) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize(
    ("paid", "ship_by", "promised"),
    [
        (_at("2026-09-01", "13:59"), date(2026, 9, 1), date(2026, 9, 3)),  # Tue before cut-off
        (_at("2026-09-01", "14:00"), date(2026, 9, 2), date(2026, 9, 4)),  # at cut-off: next day
        (_at("2026-09-03", "15:00"), date(2026, 9, 4), date(2026, 9, 9)),  # Thu late: Fri; Mon off
        (_at("2026-09-04", "15:00"), date(2026, 9, 8), date(2026, 9, 10)),  # Fri late, Labor Day
        (_at("2026-09-05", "10:00"), date(2026, 9, 8), date(2026, 9, 10)),  # Saturday
        (_at("2026-11-25", "16:00"), date(2026, 11, 27), date(2026, 12, 1)),  # Thanksgiving
    ],
    ids=[
        "before cut-off",
        "at cut-off",
        "Thursday after",
        "Friday after, holiday Monday",
        "weekend",
        "Thanksgiving",
    ],
)
def test_ship_by_and_promised_delivery(paid, ship_by, promised):
    assert ship_by_date(paid_at=paid, time_zone=NY, cutoff=CUTOFF) == ship_by
    assert add_business_days(ship_by, 2) == promised


def test_the_cut_off_is_in_the_merchants_time_zone():
    paid = _at("2026-09-01", "20:30", "UTC")  # 13:30 in Los Angeles, 16:30 in New York
    assert ship_by_date(paid_at=paid, time_zone="America/Los_Angeles", cutoff=CUTOFF) == date(
        2026, 9, 1
    )
    assert ship_by_date(paid_at=paid, time_zone=NY, cutoff=CUTOFF) == date(2026, 9, 2)


def test_a_state_holiday_counts_when_the_state_is_configured(settings):
    cesar_chavez_day = date(2026, 3, 31)
    assert is_business_day(cesar_chavez_day)
    settings.HASHCART = {**settings.HASHCART, "HOLIDAY_SUBDIVISION": "CA"}
    assert not is_business_day(cesar_chavez_day)


def test_a_closure_date_is_not_a_business_day():
    # Tuesday 1 Sep 2026 after the cut-off would ship Wednesday 2 Sep, arriving Friday 4 Sep.
    ClosureDate.objects.create(day=date(2026, 9, 2), reason="Warehouse inventory")
    paid = _at("2026-09-01", "15:00")
    ship_by = ship_by_date(paid_at=paid, time_zone=NY, cutoff=CUTOFF)
    assert ship_by == date(2026, 9, 3)
    assert add_business_days(ship_by, 2) == date(2026, 9, 8)  # Fri, then Labor Day: Tue


def test_business_days_between_counts_forwards_and_backwards():
    assert business_days_between(date(2026, 9, 3), date(2026, 9, 8)) == 2  # Fri; Mon is a holiday
    assert business_days_between(date(2026, 9, 8), date(2026, 9, 3)) == -2
    assert business_days_between(date(2026, 9, 3), date(2026, 9, 3)) == 0
