"""Merchant alerts by e-mail (issue 14, DESIGN §10.2): each once per cause, never a storm.

Interface other modules call; the alerts work fills in its body.
"""

from datetime import datetime


def alert_raise(
    *, merchant_id: int, kind: str, cause: str, subject: str, body: str, now: datetime
) -> bool:
    """Raise alert ``kind`` (e.g. ``"webhook_disabled"``) for ``cause`` (a stable key, e.g. the
    endpoint's id) to the merchant's alert recipients, through the retried e-mail outbox, in the
    caller's transaction. True if raised now; False if this (merchant, kind, cause) was raised
    before or the merchant turned the kind off."""
    raise NotImplementedError("alerts are being built (issue 14)")
