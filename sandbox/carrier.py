"""The sandbox carrier: labels with made-up tracking numbers and scripted tracking.

A label bought at time T is scanned in transit at T + 1 hour, out for delivery at T + 30 hours
and delivered at T + 32 hours (``HASHCART["SANDBOX_CARRIER_HOURS"]``). A ship-to address whose
first line contains "exception" gets an exception instead of the delivery, for trying the
exception path. The label itself lives in the database (``SandboxLabel``), so tracking survives
restarts and a repeated purchase for one shipment returns the same label. Return labels follow
the same script, kept apart from the outbound ones (``for_return``). Its webhook is signed
with HMAC-SHA256 over the raw body under ``HASHCART["CARRIER_WEBHOOK_SECRET"]``.
"""

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction

from fulfillment.carriers.base import (
    Carrier,
    Label,
    Parcel,
    PushedTracking,
    TrackingStatus,
    TrackingUpdate,
)
from sandbox.models import SandboxLabel


def sandbox_signature(body: bytes, secret: str) -> str:
    """The ``X-Hashcart-Signature`` header of a sandbox webhook carrying ``body``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


_RETURN_PREFIX = "sbx_ret_"


class SandboxCarrier(Carrier):
    name = "sandbox"

    def buy_label(
        self,
        *,
        parcel: Parcel,
        reference: str = "",
        remember: Callable[[str], None] | None = None,
    ) -> Label:
        from django.utils import timezone

        tracking = "SBX" + "".join(secrets.choice("0123456789") for _ in range(15))
        exception = "exception" in parcel.ship_to.get("line1", "").lower()
        try:
            with transaction.atomic():
                label = SandboxLabel.objects.create(
                    shipment_id=parcel.shipment_id,
                    tracking_number=tracking,
                    bought_at=timezone.now(),
                    ends_in_exception=exception,
                )
        except IntegrityError:  # bought before: the same label again
            label = SandboxLabel.objects.get(shipment_id=parcel.shipment_id)
        return Label(
            carrier=self.name,
            tracking_number=label.tracking_number,
            label_url=f"https://sandbox-carrier.invalid/labels/{label.tracking_number}.pdf",
            reference=f"sbx_{parcel.shipment_id}",
        )

    def tracking_url(self, *, tracking_number: str) -> str:
        """A stand-in address, like the sandbox's label URLs (nothing answers there)."""
        return f"https://sandbox-carrier.invalid/track/{tracking_number}"

    def buy_return_label(
        self,
        *,
        parcel: Parcel,
        reference: str = "",
        remember: Callable[[str], None] | None = None,
    ) -> Label:
        """A return label (``parcel.shipment_id`` is the return's id): the same script as an
        outbound label, delivered back at T + 32 hours; never an exception."""
        from django.utils import timezone

        tracking = "SBR" + "".join(secrets.choice("0123456789") for _ in range(15))
        try:
            with transaction.atomic():
                label = SandboxLabel.objects.create(
                    shipment_id=parcel.shipment_id,
                    for_return=True,
                    tracking_number=tracking,
                    bought_at=timezone.now(),
                )
        except IntegrityError:  # bought before: the same label again
            label = SandboxLabel.objects.get(shipment_id=parcel.shipment_id, for_return=True)
        return Label(
            carrier=self.name,
            tracking_number=label.tracking_number,
            label_url=f"https://sandbox-carrier.invalid/labels/{label.tracking_number}.pdf",
            reference=f"{_RETURN_PREFIX}{parcel.shipment_id}",
        )

    def track(self, *, tracking_number: str, reference: str, now: datetime) -> list[TrackingUpdate]:
        # By the label's own reference (``sbx_<shipment id>``, a return's ``sbx_ret_<return
        # id>``), as a real carrier's id.
        for_return = reference.startswith(_RETURN_PREFIX)
        shipment_id = reference.removeprefix(_RETURN_PREFIX if for_return else "sbx_")
        label = (
            SandboxLabel.objects.filter(
                shipment_id=int(shipment_id),
                for_return=for_return,
                tracking_number=tracking_number,
            ).first()
            if reference.startswith("sbx_") and shipment_id.isdigit()
            else None
        )
        if label is None:
            return []
        transit, out, delivered = settings.HASHCART["SANDBOX_CARRIER_HOURS"]
        script = [
            (timedelta(0), TrackingStatus.PRE_TRANSIT, "Label created"),
            (timedelta(hours=transit), TrackingStatus.IN_TRANSIT, "Picked up"),
            (timedelta(hours=out), TrackingStatus.OUT_FOR_DELIVERY, "Out for delivery"),
            (
                timedelta(hours=delivered),
                TrackingStatus.EXCEPTION if label.ends_in_exception else TrackingStatus.DELIVERED,
                "Address not found" if label.ends_in_exception else "Delivered",
            ),
        ]
        return [
            TrackingUpdate(occurred_at=label.bought_at + offset, status=status, description=text)
            for offset, status, text in script
            if label.bought_at + offset <= now
        ]

    def webhook_verify(self, *, body: bytes, headers: Mapping[str, str]) -> bool:
        secret = settings.HASHCART["CARRIER_WEBHOOK_SECRET"]
        given = headers.get("X-Hashcart-Signature", "")
        # compare_digest refuses (TypeError) a str that is not ASCII: that is a bad signature.
        if not secret or not given.isascii():
            return False
        return hmac.compare_digest(sandbox_signature(body, secret), given)

    def webhook_tracking(self, *, body: bytes) -> PushedTracking:
        payload = json.loads(body)
        return PushedTracking(
            reference=str(payload.get("reference") or ""),
            tracking_number=str(payload["tracking_number"]),
            updates=[
                TrackingUpdate(
                    occurred_at=datetime.fromisoformat(payload["occurred_at"]),
                    status=payload["status"],
                    description=payload.get("description", ""),
                )
            ],
        )
