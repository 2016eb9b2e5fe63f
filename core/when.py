"""Moments in words, for people: public replies, e-mails and pages say when something happens
the same way everywhere (UTC, as the cardholder has no time zone of their own)."""

from datetime import UTC, datetime


def moment_words(moment: datetime) -> str:
    """ "Mon 30 Nov 2026, 18:05 UTC": the day, the date and the minute, in UTC."""
    at = moment.astimezone(UTC)
    return f"{at:%a} {at.day} {at:%b %Y, %H:%M} UTC"
