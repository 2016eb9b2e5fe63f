"""The EasyPost carrier: the cheapest rate that delivers in two days, and its tracker (§7).

EasyPost creates a shipment (addresses and parcel, rated by every carrier account), then buys
one rate. Its shipment id is remembered before buying, so a retry after a crash retrieves the
shipment and returns the label it already bought. Return labels are EasyPost return shipments
(``is_return``), bought the same way at the cheapest rate. Tracking reads the shipment's
tracker; its tracker webhooks are signed with ``EASYPOST_WEBHOOK_SECRET`` (``X-Hmac-Signature``).
A label is quoted before buying from EasyPost's stateless rates, which create nothing.
"""

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import easypost
from django.conf import settings

from fulfillment.carriers.base import (
    Carrier,
    CarrierError,
    Label,
    Parcel,
    PushedTracking,
    Quote,
    TrackingStatus,
    TrackingUpdate,
)

# EasyPost's tracker statuses, mapped onto ours; anything else is an exception.
_STATUSES = {
    "pre_transit": TrackingStatus.PRE_TRANSIT,
    "in_transit": TrackingStatus.IN_TRANSIT,
    "out_for_delivery": TrackingStatus.OUT_FOR_DELIVERY,
    "delivered": TrackingStatus.DELIVERED,
    "available_for_pickup": TrackingStatus.OUT_FOR_DELIVERY,
}
_IGNORED = {"unknown", "cancelled"}


def _address(fields: dict[str, str]) -> dict[str, str]:
    return {
        "name": fields.get("name", ""),
        "street1": fields.get("line1", ""),
        "street2": fields.get("line2", ""),
        "city": fields.get("city", ""),
        "state": fields.get("state", ""),
        "zip": fields.get("postal_code", ""),
        "country": fields.get("country", "US"),
    }


class EasyPostCarrier(Carrier):
    name = "easypost"

    def __init__(self, client: easypost.EasyPostClient | None = None) -> None:
        self.client = client or easypost.EasyPostClient(settings.EASYPOST_API_KEY, timeout=30)

    def buy_label(
        self,
        *,
        parcel: Parcel,
        reference: str = "",
        remember: Callable[[str], None] | None = None,
    ) -> Label:
        try:
            if reference:
                shipment = self.client.shipment.retrieve(reference)
            else:
                shipment = self.client.shipment.create(
                    to_address=_address(parcel.ship_to),
                    from_address=settings.HASHCART["SHIP_FROM"],
                    parcel=settings.HASHCART["DEFAULT_PARCEL"],
                    reference=f"hashcart-shipment-{parcel.shipment_id}",
                )
                if remember is not None:
                    remember(shipment.id)
            if not getattr(shipment, "postage_label", None):
                shipment = self.client.shipment.buy(shipment.id, rate=self._two_day_rate(shipment))
        except easypost.errors.EasyPostError as exc:
            raise CarrierError(f"EasyPost: {exc}") from exc
        return Label(
            carrier=self.name,
            tracking_number=shipment.tracking_code,
            label_url=shipment.postage_label.label_url,
            reference=shipment.id,
        )

    def buy_return_label(
        self,
        *,
        parcel: Parcel,
        reference: str = "",
        remember: Callable[[str], None] | None = None,
    ) -> Label:
        """An EasyPost return shipment (``is_return: true``: EasyPost swaps the addresses, so
        the label goes from the buyer's address back to ours), at its cheapest rate: a return
        is not promised in two days."""
        try:
            if reference:
                shipment = self.client.shipment.retrieve(reference)
            else:
                shipment = self.client.shipment.create(
                    to_address=_address(parcel.ship_to),
                    from_address=settings.HASHCART["SHIP_FROM"],
                    parcel=settings.HASHCART["DEFAULT_PARCEL"],
                    is_return=True,
                    reference=f"hashcart-return-{parcel.shipment_id}",
                )
                if remember is not None:
                    remember(shipment.id)
            if not getattr(shipment, "postage_label", None):
                if not shipment.rates:
                    raise CarrierError("EasyPost offered no rate for the return.")
                cheapest = min(shipment.rates, key=lambda rate: float(rate["rate"]))
                shipment = self.client.shipment.buy(shipment.id, rate={"id": cheapest["id"]})
        except easypost.errors.EasyPostError as exc:
            raise CarrierError(f"EasyPost: {exc}") from exc
        return Label(
            carrier=self.name,
            tracking_number=shipment.tracking_code,
            label_url=shipment.postage_label.label_url,
            reference=shipment.id,
        )

    @staticmethod
    def _two_day_rate(shipment: Any) -> dict[str, Any]:
        return {"id": _cheapest_two_day(shipment.rates)["id"]}

    def label_quote(self, *, parcel: Parcel) -> Quote | None:
        """The rate ``buy_label`` would pick (the cheapest within two days), from EasyPost's
        stateless rates (its beta API: nothing is created at EasyPost). A quote, not a promise:
        the shipment bought is rated again. None when EasyPost cannot answer."""
        try:
            # A list of rates (the SDK's annotation says a dict).
            rates: Any = self.client.beta_rate.retrieve_stateless_rates(
                to_address=_address(parcel.ship_to),
                from_address=settings.HASHCART["SHIP_FROM"],
                parcel=settings.HASHCART["DEFAULT_PARCEL"],
            )
            rate = _cheapest_two_day(rates or [])
            return Quote(
                amount=Decimal(str(rate["rate"])), currency=str(rate.get("currency") or "USD")
            )
        except (easypost.errors.EasyPostError, CarrierError, KeyError, TypeError, ArithmeticError):
            return None

    def track(self, *, tracking_number: str, reference: str, now: datetime) -> list[TrackingUpdate]:
        try:
            shipment = self.client.shipment.retrieve(reference)
        except easypost.errors.EasyPostError as exc:
            raise CarrierError(f"EasyPost: {exc}") from exc
        tracker = getattr(shipment, "tracker", None)
        details = tracker.get("tracking_details", []) if tracker else []
        return updates_from(details)

    def webhook_verify(self, *, body: bytes, headers: Mapping[str, str]) -> bool:
        if not settings.EASYPOST_WEBHOOK_SECRET:
            return False
        if not all(value.isascii() for value in headers.values()):
            return False
        try:
            easypost.util.validate_webhook(body, dict(headers), settings.EASYPOST_WEBHOOK_SECRET)
        except (easypost.errors.EasyPostError, TypeError, UnicodeError, ValueError):
            return False
        return True

    def webhook_tracking(self, *, body: bytes) -> PushedTracking:
        tracker = json.loads(body)["result"]
        return PushedTracking(
            reference=str(tracker.get("shipment_id") or ""),
            tracking_number=str(tracker["tracking_code"]),
            updates=updates_from(tracker.get("tracking_details", [])),
        )


def _cheapest_two_day(rates: list[Any]) -> Any:
    """The cheapest of EasyPost's ``rates`` that delivers within two days."""
    fast = [
        rate
        for rate in rates
        if rate.get("delivery_days") is not None and int(rate["delivery_days"]) <= 2
    ]
    if not fast:
        raise CarrierError("EasyPost offered no rate that delivers within two days.")
    return min(fast, key=lambda rate: float(rate["rate"]))


def updates_from(details: list[Any]) -> list[TrackingUpdate]:
    """Our updates from EasyPost's ``tracking_details`` (also in its tracker webhooks)."""
    updates = []
    for detail in details:
        status = str(detail.get("status", "unknown"))
        if status in _IGNORED:
            continue
        updates.append(
            TrackingUpdate(
                occurred_at=datetime.fromisoformat(str(detail["datetime"]).replace("Z", "+00:00")),
                status=_STATUSES.get(status, TrackingStatus.EXCEPTION),
                description=str(detail.get("message") or status)[:300],
            )
        )
    return updates
