"""The "Not me" page: a signed link from an order e-mail, usable without signing in (§8).

GET shows what the link will do and changes nothing (mail scanners follow links); the POST,
protected by CSRF, cancels the order and pauses buying by post.
"""

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from orders.messages import NOT_ME_SALT
from orders.models import Order
from orders.services import order_cancel

LINK_DAYS = 30


@require_http_methods(["GET", "POST"])
def not_me(request: HttpRequest, token: str) -> HttpResponse:
    try:
        order_id = signing.loads(token, salt=NOT_ME_SALT, max_age=LINK_DAYS * 86400)["order"]
        order = Order.objects.get(pk=order_id)
    except (signing.BadSignature, KeyError, TypeError, Order.DoesNotExist):
        return render(request, "orders/not_me.html", {"invalid": True}, status=404)
    cancelled = None
    if request.method == "POST":
        cancelled = order_cancel(
            order_id=order.pk, now=timezone.now(), actor_label="not-me link", pause_purchasing=True
        )
        order.refresh_from_db()
    return render(
        request,
        "orders/not_me.html",
        {"order": order, "cancelled": cancelled, "posted": request.method == "POST"},
    )
