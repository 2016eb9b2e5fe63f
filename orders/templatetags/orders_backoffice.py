"""The notice of disputes waiting for an answer, at the top of the back office's home page
(``config/templates/admin/index.html``): ``{% load orders_backoffice %}{% open_disputes_notice %}``.
The order and dispute lists show the same notice (``orders.admin``)."""

from typing import Any

from django import template

from core.scoping import merchant_id_of
from orders.selectors import disputes_open

register = template.Library()


@register.inclusion_tag("admin/orders/_open_disputes.html", takes_context=True)
def open_disputes_notice(context: Any) -> dict[str, Any]:
    """The user's merchant's open cases (an operator's: every merchant's, and the escalated
    ones), soonest deadline first; nothing for a user who may not see disputes."""
    request = context.get("request")
    if request is None or not request.user.has_perm("orders.view_dispute"):
        return {"open_disputes_count": 0, "open_disputes": []}
    count, cases = disputes_open(merchant_id=merchant_id_of(request))
    return {"open_disputes_count": count, "open_disputes": cases}
