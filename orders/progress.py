"""An order's status in the words every page shows (issue 14): the buyer's pages, the order
admin, the shipment admin.

An order is ``shipped`` from the moment its label is bought, which is when its payment is
captured (DESIGN §7); the parcel leaves only when the carrier scans it. "Shipped" alone then
contradicted the shipment's "Label bought", so a shipped order with a shipment says where the
parcel is, in the shipment's own words (``Shipment.progress``: "Label bought, awaiting the
carrier's scan", "In transit with the carrier", a delivery problem). The state machine is
unchanged: this is what the state is called on screen.
"""

from orders.models import Order, OrderStatus


def order_status_words(order: Order) -> str:
    """``order``'s status as shown: its shipment's progress while shipped, else its status's
    name. Reads the shipment through the reverse relation (fulfillment's, loaded by the caller
    to spare a query per row)."""
    shipment = getattr(order, "shipment", None)  # none before payment: the relation raises
    if order.status == OrderStatus.SHIPPED and shipment is not None:
        return str(shipment.progress)
    return str(order.get_status_display())
