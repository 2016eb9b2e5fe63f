"""An order's ship-to address as people write it: one place for its lines (the order page, the
shipment page, the fulfillment queue's CSV)."""

from collections.abc import Mapping
from typing import Any


def ship_to_lines(ship_to: Mapping[str, Any]) -> list[str]:
    """The lines of a ship-to snapshot (``Card.ship_to``'s keys): name, street lines, "City,
    ST 12345", and the country unless it is the US; empty parts are left out."""
    part = {key: str(ship_to.get(key) or "").strip() for key in ship_to}
    get = part.get
    region = " ".join(p for p in (get("state", ""), get("postal_code", "")) if p)
    city = ", ".join(p for p in (get("city", ""), region) if p)
    country = get("country", "")
    lines = [get("name", ""), get("line1", ""), get("line2", ""), city]
    if country and country.upper() not in ("US", "USA"):
        lines.append(country)
    return [line for line in lines if line]
