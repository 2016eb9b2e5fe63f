"""Writes of fulfillment: scheduling shipments, buying labels (and capturing), tracking."""

from fulfillment.services.labels import LabelOutcome, label_buy, order_mark_shipped
from fulfillment.services.schedule import shipment_cancel, shipment_schedule, shipment_transition
from fulfillment.services.tracking import shipment_track, shipments_to_track

__all__ = [
    "LabelOutcome",
    "label_buy",
    "order_mark_shipped",
    "shipment_cancel",
    "shipment_schedule",
    "shipment_track",
    "shipment_transition",
    "shipments_to_track",
]
