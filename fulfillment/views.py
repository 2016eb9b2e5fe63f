"""Carrier webhooks: tracking pushed by the carrier, verified by its signature (DESIGN §7).

The request is trusted only when its HMAC-SHA256 signature over the raw body matches the
shared secret; anything else (a signature header that is not even ASCII included) is refused
with 400 and changes nothing. The update goes through the same ``shipment_track`` as polling, so
a repeated delivery changes nothing twice. It applies only to a label Hashcart bought from that
carrier, found by the carrier's own reference (the sandbox's ``reference``, EasyPost's tracker
``shipment_id``); an update about any other shipment is acknowledged and ignored.
"""

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import easypost
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from fulfillment.carriers.base import TrackingUpdate
from fulfillment.carriers.easypost import updates_from
from fulfillment.services import shipment_track
from fulfillment.services.tracking import shipment_for_carrier_update


def sandbox_signature(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _verified(request: HttpRequest, carrier: str) -> dict[str, Any] | None:
    body = request.body
    if carrier == "sandbox":
        secret = settings.HASHCART["CARRIER_WEBHOOK_SECRET"]
        given = request.headers.get("X-Hashcart-Signature", "")
        # compare_digest refuses (TypeError) a str that is not ASCII: that is a bad signature.
        if not secret or not given.isascii():
            return None
        if not hmac.compare_digest(sandbox_signature(body, secret), given):
            return None
        return json.loads(body)
    if carrier == "easypost":
        if not settings.EASYPOST_WEBHOOK_SECRET:
            return None
        if not all(value.isascii() for value in request.headers.values()):
            return None
        try:
            return easypost.util.validate_webhook(
                body, dict(request.headers), settings.EASYPOST_WEBHOOK_SECRET
            )
        except (easypost.errors.EasyPostError, TypeError, UnicodeError):
            return None
    return None


def _updates(carrier: str, payload: dict[str, Any]) -> tuple[str, str, list[TrackingUpdate]]:
    """The carrier's reference for the shipment, its tracking number, and the updates."""
    if carrier == "sandbox":
        return (
            str(payload.get("reference") or ""),
            payload["tracking_number"],
            [
                TrackingUpdate(
                    occurred_at=datetime.fromisoformat(payload["occurred_at"]),
                    status=payload["status"],
                    description=payload.get("description", ""),
                )
            ],
        )
    tracker = payload["result"]
    return (
        str(tracker.get("shipment_id") or ""),
        tracker["tracking_code"],
        updates_from(tracker.get("tracking_details", [])),
    )


@csrf_exempt  # the carrier signs the request instead; verified before anything is read
@require_POST
def carrier_webhook(request: HttpRequest, carrier: str) -> HttpResponse:
    try:
        payload = _verified(request, carrier)
    except ValueError:
        payload = None
    if payload is None:
        return HttpResponse("bad signature", status=400)
    try:
        reference, tracking_number, updates = _updates(carrier, payload)
    except (KeyError, TypeError, ValueError):
        return HttpResponse("unreadable update", status=400)
    # The labels Hashcart bought from this carrier only, by the carrier's reference: a tracking
    # number typed in by a merchant (or for another carrier) may collide with this one's.
    shipment_id = shipment_for_carrier_update(
        carrier=carrier, reference=reference, tracking_number=str(tracking_number)
    )
    if shipment_id is not None:
        shipment_track(
            shipment_id=shipment_id, now=timezone.now(), updates=updates, source="webhook"
        )
    return HttpResponse(status=200)
