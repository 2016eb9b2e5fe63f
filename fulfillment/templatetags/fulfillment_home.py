"""The merchant home page at the top of the back office's index
(``config/templates/admin/index.html``): ``{% load fulfillment_home %}{% merchant_home %}``.

Staff see their merchant's page; operators pick a merchant (``?merchant=<id>``) and, until they
do, see the disputes waiting for any merchant. The reads are ``fulfillment.home``'s; this tag
only chooses the merchant, the links the user may follow, and the template.
"""

from typing import Any

from django import template
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from catalog.models import Merchant
from core.scoping import merchant_id_of
from fulfillment.home import home_merchants, merchant_home
from orders.selectors import disputes_open

register = template.Library()

# The links shown, each only to users holding a permission that its page accepts (a link a
# staff member can see never leads to a 403): any one of those listed (the admin opens the
# pages of rows a user may change, read-only lists only to those who may view them).
_PERMISSIONS = {
    "shipments": ("fulfillment.view_shipment",),
    "buy_labels": ("fulfillment.ship_shipment",),
    "orders": ("orders.view_order",),
    "disputes": ("orders.view_dispute",),
    "returns": ("orders.view_return",),
    "campaigns": ("catalog.view_campaign",),
    # The merchant's other pages (the "Reports and settings" section). The sales report asks
    # for the view permission of orders (``orders.admin_reports``), the rest their own model's.
    "sales_report": ("orders.view_order",),
    "alert_settings": ("orders.view_alertsettings", "orders.change_alertsettings"),
    "alerts": ("orders.view_alert",),
    "webhook_endpoints": ("orders.view_webhookendpoint", "orders.change_webhookendpoint"),
    "webhook_deliveries": ("orders.view_webhookdelivery",),
}


@register.inclusion_tag("admin/fulfillment/home.html", takes_context=True)
def merchant_home_section(context: Any) -> dict[str, Any]:
    request: HttpRequest | None = context.get("request")
    if request is None:
        return {"home": None}
    user = request.user
    can = {name: any(user.has_perm(p) for p in perms) for name, perms in _PERMISSIONS.items()}
    merchant_id = merchant_id_of(request)
    picker: list[Merchant] = []
    merchant: Merchant | None = None
    if merchant_id is None:  # an operator: any merchant, picked
        picker = home_merchants()
        picked = request.GET.get("merchant", "")
        merchant = next((m for m in picker if str(m.pk) == picked), None)
    elif merchant_id:
        merchant = Merchant.objects.filter(pk=merchant_id).first()
    if merchant is None:
        count, cases = (0, []) if not can["disputes"] else disputes_open(merchant_id=merchant_id)
        return {
            "home": None,
            "picker": picker,
            "open_disputes_count": count,
            "open_disputes": cases,
        }
    home = merchant_home(merchant=merchant, now=timezone.now())
    return {
        "home": home,
        "picker": picker,
        "can": can,
        "buy_labels_url": _buy_labels_url(home.label_ids) if can["buy_labels"] else "",
        "open_disputes_count": home.disputes_count,
        "open_disputes": home.disputes,
    }


def _buy_labels_url(shipment_ids: list[int]) -> str:
    """The confirmation page of buying these shipments' labels, or "" when none is due."""
    if not shipment_ids:
        return ""
    url = reverse("admin:fulfillment_shipment_buy_labels")
    return f"{url}?ids={','.join(str(pk) for pk in shipment_ids)}"
