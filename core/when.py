"""Moments in words, for people: public replies, e-mails and pages say when something happens
the same way everywhere (UTC, as the cardholder has no time zone of their own; a merchant's
papers and e-mails in its own zone)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def moment_words(moment: datetime) -> str:
    """ "Mon 30 Nov 2026, 18:05 UTC": the day, the date and the minute, in UTC."""
    at = moment.astimezone(UTC)
    return f"{at:%a} {at.day} {at:%b %Y, %H:%M} UTC"


def local_moment_words(moment: datetime, time_zone: str) -> str:
    """ "30 November 2026, 14:05 EST": the date and the minute in ``time_zone`` (an IANA name),
    with the zone's abbreviation."""
    return f"{moment.astimezone(ZoneInfo(time_zone)):%d %B %Y, %H:%M %Z}"
