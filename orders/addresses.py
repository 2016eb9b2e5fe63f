"""An order's ship-to address as people read it, from its snapshot (``Order.ship_to``): one
place for its fields and lines (the order page, the shipment page, the label queue's table and
CSV, the buy-labels page), so it reads the same everywhere.

The snapshot's keys are those of ``accounts.selectors.BuyerCard.ship_to``: ``name``, ``line1``,
``line2``, ``city``, ``state``, ``postal_code`` and ``country`` (ISO code, "US" when missing).
"""

from collections.abc import Mapping
from typing import Any

SHIP_TO_KEYS = ("name", "line1", "line2", "city", "state", "postal_code", "country")


def ship_to_fields(ship_to: Mapping[str, Any]) -> dict[str, str]:
    """Every key of ``SHIP_TO_KEYS`` as text ("" for a missing one; the country "US" when
    missing, as the carriers assume)."""
    fields = {key: str(ship_to.get(key) or "").strip() for key in SHIP_TO_KEYS}
    fields["country"] = fields["country"] or "US"
    return fields


def ship_to_lines(ship_to: Mapping[str, Any]) -> list[str]:
    """The address as printed on an envelope (US style): name, street lines, "City, ST 12345",
    and the country unless it is the US; empty parts are left out."""
    f = ship_to_fields(ship_to)
    region = " ".join(p for p in (f["state"], f["postal_code"]) if p)
    city = ", ".join(p for p in (f["city"], region) if p)
    lines = [f["name"], f["line1"], f["line2"], city]
    if f["country"].upper() not in ("US", "USA"):
        lines.append(f["country"])
    return [line for line in lines if line]


def ship_to_one_line(ship_to: Mapping[str, Any]) -> str:
    """The address on one line, the name left out: "1 Main St, Springfield, IL 62701"."""
    return ", ".join(ship_to_lines({**ship_to, "name": ""}))
