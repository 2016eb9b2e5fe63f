"""The contract of a carrier (DESIGN §7): buy a two-day label, report tracking.

``buy_label`` is called outside any database transaction by the one holder of the shipment's
label lease; ``reference`` is the carrier's id for the shipment when a previous attempt created
one, so that a retry finds the label it may already have bought instead of buying another.
"""

import abc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Parcel:
    """What a label needs: the order's ship-to address (the card's billing address) and what is
    in the box."""

    shipment_id: int
    order_code: str
    product_name: str
    ship_to: dict[str, str]
    ship_from_name: str


@dataclass(frozen=True)
class Label:
    carrier: str
    tracking_number: str
    label_url: str
    reference: str = ""


class TrackingStatus:
    PRE_TRANSIT = "pre_transit"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"


@dataclass(frozen=True)
class TrackingUpdate:
    occurred_at: datetime
    status: str  # one of TrackingStatus
    description: str = ""


class CarrierError(Exception):
    """The carrier could not be reached or failed: try again later."""


class Carrier(abc.ABC):
    name: str

    @abc.abstractmethod
    def buy_label(
        self,
        *,
        parcel: Parcel,
        reference: str = "",
        remember: Callable[[str], None] | None = None,
    ) -> Label:
        """Buy a two-day label for ``parcel``; raises ``CarrierError``. A carrier that creates
        its own shipment before buying calls ``remember`` with its id first, so that a retry
        after a crash passes it back as ``reference`` and finds the label instead of buying
        a second one."""

    @abc.abstractmethod
    def track(self, *, tracking_number: str, reference: str, now: datetime) -> list[TrackingUpdate]:
        """Everything the carrier reports for the shipment, oldest first."""
