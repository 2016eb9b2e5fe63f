"""Signed outbound webhooks (issue 14, DESIGN §10.2): Standard Webhooks, from an outbox.

Interface other modules call; the webhooks work fills in its body.
"""

from datetime import datetime
from typing import Any


def webhook_event_record(
    *, merchant_id: int, event_type: str, data: dict[str, Any], event_key: str, now: datetime
) -> None:
    """Queue event ``event_type`` (e.g. ``"campaign.sold_out"``) with payload ``data`` for each of
    the merchant's endpoints subscribed to it, in the caller's transaction. ``event_key`` makes
    it once: a second call with the same key queues nothing (its event id is derived from it)."""
    raise NotImplementedError("webhooks are being built (issue 14)")
