"""The contract of a carrier (DESIGN §7): buy a two-day label (and a return label), report
tracking, and verify and read the tracking it pushes to its webhook.

``buy_label`` is called outside any database transaction by the one holder of the shipment's
label lease; ``reference`` is the carrier's id for the shipment when a previous attempt created
one, so that a retry finds the label it may already have bought instead of buying another.
"""

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


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
class Quote:
    """What a label costs, as the carrier quoted it before buying."""

    amount: Decimal
    currency: str = "USD"


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


@dataclass(frozen=True)
class PushedTracking:
    """What a carrier's webhook says: its own reference for the shipment (recorded when the
    label was bought), the tracking number, and the updates."""

    reference: str
    tracking_number: str
    updates: list[TrackingUpdate]


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

    def buy_return_label(
        self,
        *,
        parcel: Parcel,
        reference: str = "",
        remember: Callable[[str], None] | None = None,
    ) -> Label:
        """Buy a prepaid label for goods coming back (a return, DESIGN §3.4): from
        ``parcel.ship_to`` (where the order went) to the warehouse parcels leave from;
        ``parcel.shipment_id`` is the return's id. The same retry rules as ``buy_label``; raises
        ``CarrierError``. Tracked like any label (``track`` with its tracking number and
        reference). A carrier that sells no return labels refuses (this default)."""
        raise CarrierError(f"The {self.name} carrier sells no return labels.")

    def label_quote(self, *, parcel: Parcel) -> Quote | None:
        """The price of ``parcel``'s two-day label, if the carrier can tell it before buying
        without buying or creating anything (the buy-labels page asks it on every view); None
        when the price is known only once bought (this default). Never raises: a carrier that
        cannot answer now says None."""
        return None

    @abc.abstractmethod
    def track(self, *, tracking_number: str, reference: str, now: datetime) -> list[TrackingUpdate]:
        """Everything the carrier reports for the shipment, oldest first."""

    def tracking_url(self, *, tracking_number: str) -> str:
        """The carrier's public page where the buyer follows the parcel, or "" when it has none
        a tracking number alone can open (this default)."""
        return ""

    def webhook_verify(self, *, body: bytes, headers: Mapping[str, str]) -> bool:
        """True if a request to this carrier's webhook comes from the carrier: its signature in
        ``headers`` (case-insensitive names) matches the raw ``body`` under the shared secret.
        False for anything else, an unset secret or a header that is not ASCII included; never
        raises. A carrier that pushes nothing refuses every request (this default)."""
        return False

    def webhook_tracking(self, *, body: bytes) -> PushedTracking:
        """Read a verified webhook's ``body``; raises ``ValueError``, ``KeyError`` or
        ``TypeError`` if it is not an update this carrier sends."""
        raise ValueError(f"The {self.name} carrier pushes no tracking.")
