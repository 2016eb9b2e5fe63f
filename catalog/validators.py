"""Validators referenced by the catalog's models, and so by dotted path from its migrations."""

import zoneinfo
from functools import cache

from django.core.exceptions import ValidationError


@cache
def time_zone_names() -> frozenset[str]:
    """The IANA time zones this machine's tz database knows (``tzdata`` or the system's)."""
    return frozenset(zoneinfo.available_timezones())


def time_zone_choices() -> list[tuple[str, str]]:
    """The choices of a time-zone field's form, read when the form is built: they live in no
    migration, so a ``tzdata`` update never asks for one."""
    return [(name, name) for name in sorted(time_zone_names()) if "/" in name]


def validate_time_zone(value: str) -> None:
    """Raises ``ValidationError`` unless ``value`` names a time zone of the tz database."""
    if value not in time_zone_names():
        raise ValidationError(
            "%(value)s is not a time zone (use a name like America/New_York).",
            code="invalid_time_zone",
            params={"value": value},
        )
