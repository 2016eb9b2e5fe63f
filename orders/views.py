"""Pages behind signed links in order e-mails, usable without signing in (§8), and the
cardholder's cancel from their settings page.

"Not me" cancels the order and pauses buying by post (on an order that has shipped it opens a
dispute instead, ``dispute_open``, and pauses buying too); "Confirm" is the private half of the
confirmation of an order above the buyer's e-mail threshold; "Approve your payment" runs the
card's bank check (3-D Secure) for an order waiting for it; "Confirm order" confirms an order
whose confirmation request was sent privately (``orders.services.private``), as its post would.
GET shows what the link will do and changes nothing (mail scanners follow links); the POST,
protected by CSRF, does it.
The signed-in cardholder also has a page per order here (``cardholder_order``: its timeline,
its code and time left while pending, and its actions), downloads their receipts and leaves a
waitlist.
"""

from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.exceptions import ApplicationError
from orders.messages import (
    AUTHENTICATE_SALT,
    EMAIL_CONFIRM_SALT,
    NOT_ME_SALT,
    PRIVATE_CONFIRM_SALT,
    authenticate_url,
    not_me_url,
)
from orders.models import (
    DISPUTABLE_STATUSES,
    RETURNABLE_STATUSES,
    CancelReason,
    DisputeStatus,
    Order,
    OrderStatus,
    WaitlistEntry,
)
from orders.payments import gateway
from orders.receipt_pdf import receipt_download
from orders.selectors import (
    cardholder_credit_note,
    cardholder_receipt,
    order_timeline,
)
from orders.selectors import (
    cardholder_order as cardholder_order_of,
)
from orders.services import (
    order_authentication_complete,
    order_authentication_status,
    order_cancel,
    order_email_confirm,
    order_private_confirm,
)
from orders.services.authentication import authentication_lapsed
from orders.services.disputes import dispute_escalate, dispute_open
from orders.services.returns import return_request
from orders.services.waitlist import waitlist_leave
from social.models import Platform

LINK_DAYS = 30
# Orders "Not me" has nothing left to do for: ended, or every penny back.
NOT_ME_ENDED = (
    OrderStatus.EXPIRED,
    OrderStatus.CANCELLED,
    OrderStatus.DECLINED,
    OrderStatus.REFUNDED,
)


def _order_of(token: str, *, salt: str, **filters: Any) -> Order | None:
    """The order a signed link (``orders.messages``) names, or None for a forged, expired or
    stale one."""
    try:
        order_id = signing.loads(token, salt=salt, max_age=LINK_DAYS * 86400)["order"]
        return Order.objects.get(pk=order_id, **filters)
    except (signing.BadSignature, KeyError, TypeError, Order.DoesNotExist):
        return None


@require_http_methods(["GET", "POST"])
def not_me(request: HttpRequest, token: str) -> HttpResponse:
    order = _order_of(token, salt=NOT_ME_SALT)
    if order is None:
        return render(request, "orders/not_me.html", {"invalid": True}, status=404)
    cancelled = None
    dispute = None
    # Shipped: the goods are gone and the money taken, so "Not me" opens a case instead.
    disputable = order.status in DISPUTABLE_STATUSES or hasattr(order, "dispute")
    if request.method == "POST":
        if disputable:
            dispute = dispute_open(order_id=order.pk, now=timezone.now())
        else:
            cancelled = order_cancel(
                order_id=order.pk,
                now=timezone.now(),
                actor_label="not-me link",
                reason=CancelReason.NOT_ME,
                pause_purchasing=True,
            )
        order.refresh_from_db()
    return render(
        request,
        "orders/not_me.html",
        {
            "order": order,
            "cancelled": cancelled,
            "dispute": dispute,
            "disputable": disputable,
            "posted": request.method == "POST",
        },
    )


@require_http_methods(["GET", "POST"])
def email_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The e-mail half of confirming an order above the buyer's confirm-by-e-mail amount."""
    order = _order_of(token, salt=EMAIL_CONFIRM_SALT, email_confirm_required=True)
    return _confirm_page(request, order, order_email_confirm, "orders/email_confirm.html")


@require_http_methods(["GET", "POST"])
def private_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The Confirm button of a confirmation request sent privately. The link names one order
    (signed, ``PRIVATE_CONFIRM_SALT``), and is of use once: the first POST in the window
    confirms (``order_private_confirm``), any later one says what became of the order."""
    order = _order_of(token, salt=PRIVATE_CONFIRM_SALT, request_private_at__isnull=False)
    return _confirm_page(request, order, order_private_confirm, "orders/private_confirm.html")


def _confirm_page(
    request: HttpRequest,
    order: Order | None,
    confirm: Callable[..., str],
    template: str,
) -> HttpResponse:
    """A confirm link's page: 404 for a link that names no order; GET shows the order; the POST
    runs ``confirm`` (``order_id``, ``now``: its result to the page) and, once the order is
    confirmed, asks for the card's authorization after the commit."""
    if order is None:
        return render(request, template, {"invalid": True}, status=404)
    result = None
    if request.method == "POST":
        result = confirm(order_id=order.pk, now=timezone.now())
        if result == "confirmed":
            from orders.tasks import payments_run_task

            transaction.on_commit(payments_run_task.delay)
        order.refresh_from_db()
    return render(request, template, {"order": order, "result": result})


@never_cache  # the page may carry the gateway's client secret
@require_http_methods(["GET", "POST"])
def authenticate(request: HttpRequest, token: str) -> HttpResponse:
    """The buyer approves an order's card payment with their bank (3-D Secure). GET shows the
    item and total and, while the order waits in time, the gateway's part of the page (its
    ``authentication_template``: Stripe.js, or the sandbox's stand-in), which runs the bank's
    check and then submits the form. The POST reads the outcome from the gateway
    (``order_authentication_complete``), whatever the browser says."""
    order = _order_of(token, salt=AUTHENTICATE_SALT)
    if order is None:
        return render(request, "orders/authenticate.html", {"invalid": True}, status=404)
    context: dict[str, Any] = {"order": order, "form_id": "authenticate-form"}
    if request.method == "POST":
        context["result"] = order_authentication_complete(order_id=order.pk, now=timezone.now())
        if context["result"] in ("paid", "declined"):  # a reply and an e-mail wait to be sent
            from orders.tasks import kick, notifications_send_task, replies_send_all_task

            kick(replies_send_all_task)
            kick(notifications_send_task)
        order.refresh_from_db()
    elif order.status == OrderStatus.AUTHENTICATION_REQUIRED:
        if authentication_lapsed(order=order, now=timezone.now()):
            context["result"] = "late"
        else:
            context["status"] = order_authentication_status(order=order)
            context["gateway"] = gateway()
    return render(request, "orders/authenticate.html", context)


def _back(request: HttpRequest) -> HttpResponse:
    """Back where the form was: the order's page when the form came from there (``back``: the
    order's id; the page itself answers 404 for another's), else the settings page."""
    back = request.POST.get("back", "")
    if back.isascii() and back.isdigit():
        return redirect("orders:cardholder_order", int(back))
    return redirect("accounts:settings")


@never_cache  # a page of one person's order, with its live time left
@login_required
@require_GET
def cardholder_order(request: HttpRequest, order_id: int) -> HttpResponse:
    """The signed-in cardholder's page of one of their orders: its timeline (posted,
    confirmed, paid, shipped with the carrier's tracking link, delivered, and any cancel,
    expiry, decline, refund, return or case), the code to post and the time left while it is
    pending (in the page; ``order_countdown.js`` only ticks it), and the actions that apply now
    (cancel, receipt and credit notes, return, review of a rejected case, and "Not me", the
    e-mails' signed link). Another's order,
    or none, is the same 404: the page never tells whether an id exists."""
    order = cardholder_order_of(user_id=cast(int, request.user.pk), order_id=order_id)
    if order is None:
        raise Http404("No such order.")
    now = timezone.now()
    seconds_left = None
    if order.status == OrderStatus.PENDING and order.expires_at is not None:
        seconds_left = max(0, int((order.expires_at - now).total_seconds()))
    shipment = getattr(order, "shipment", None)
    tracking_url = ""
    if shipment is not None and shipment.tracking_number:
        tracking_url = import_string(settings.HASHCART["TRACKING_URL_SOURCE"])(
            carrier=shipment.carrier, tracking_number=shipment.tracking_number
        )
    dispute = getattr(order, "dispute", None)
    return render(
        request,
        "orders/cardholder_order.html",
        {
            "order": order,
            "timeline": order_timeline(order),
            "shipment": shipment,
            "tracking_url": tracking_url,
            "dispute": dispute,
            "platform_label": dict(Platform.choices).get(order.platform, order.platform),
            "confirm_post": f"#{order.campaign.confirm_prefix}{order.confirmation_code}",
            "seconds_left": seconds_left,
            "time_left": f"{seconds_left // 60}:{seconds_left % 60:02d}" if seconds_left else "",
            "window": settings.HASHCART["CONFIRMATION_WINDOW_MINUTES"],
            "cancellable": order.status == OrderStatus.PENDING,
            "authenticate_url": authenticate_url(order.pk)
            if order.status == OrderStatus.AUTHENTICATION_REQUIRED
            else "",
            "returnable": order.status in RETURNABLE_STATUSES and dispute is None,
            "escalatable": dispute is not None and dispute.status == DisputeStatus.REJECTED,
            "return_days": settings.HASHCART["RETURN_DAYS"],
            "disputable": order.status in DISPUTABLE_STATUSES,
            # "Not me" from the page as from the e-mails: an order not yet ended and not in a case.
            "not_me_url": not_me_url(order.pk)
            if dispute is None and order.status not in NOT_ME_ENDED
            else "",
        },
    )


@login_required
@require_POST
def cardholder_order_cancel(request: HttpRequest) -> HttpResponse:
    """The cardholder cancels one of their pending orders (their order's page, or the settings
    page's orders section, ``orders_cardholder``); another's order is a 404. Back where the
    form was (``_back``)."""
    try:
        order = get_object_or_404(
            Order, cardholder__user_id=request.user.pk, pk=int(request.POST["order"])
        )
        if order.status != OrderStatus.PENDING or not order_cancel(
            order_id=order.pk,
            now=timezone.now(),
            actor_label="cardholder",
            actor_id=request.user.pk,
            reason=CancelReason.BUYER,
        ):
            raise ApplicationError("This order can no longer be cancelled here.")
        messages.success(request, f"Order #{order.confirmation_code} is cancelled.")
    except (KeyError, ValueError):
        messages.error(request, "That request was incomplete.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return _back(request)


@login_required
@require_POST
def waitlist_leave_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    """The signed-in cardholder leaves one of their waitlists (the settings page's orders
    section); another's entry is a 404 (the same answer as for none). Back to the settings
    page, saying whether they left or had been promoted meanwhile."""
    entry = get_object_or_404(
        WaitlistEntry.objects.select_related("campaign__product"),
        pk=entry_id,
        cardholder__user_id=request.user.pk,
    )
    name = entry.campaign.product.name
    if waitlist_leave(entry_id=entry.pk, cardholder_id=entry.cardholder_id, now=timezone.now()):
        messages.success(request, f"You have left the waitlist for {name}.")
    else:
        messages.error(request, f"You are no longer waiting for {name}: see your orders below.")
    return redirect("accounts:settings")


@login_required
@require_GET
def cardholder_receipt_pdf(request: HttpRequest, order_id: int) -> HttpResponse:
    """The receipt of one of the signed-in cardholder's orders, as a PDF; a 404 for another's
    order or one without a receipt (the same answer, so ids cannot be probed)."""
    receipt = cardholder_receipt(user_id=cast(int, request.user.pk), order_id=order_id)
    if receipt is None:
        raise Http404("No such receipt.")
    return receipt_download(receipt)


@login_required
@require_GET
def cardholder_credit_note_pdf(request: HttpRequest, credit_note_id: int) -> HttpResponse:
    """A credit note of one of the signed-in cardholder's refunds, as a PDF; a 404 for
    another's (the same answer as for none, so ids cannot be probed)."""
    note = cardholder_credit_note(user_id=cast(int, request.user.pk), credit_note_id=credit_note_id)
    if note is None:
        raise Http404("No such credit note.")
    return receipt_download(note)


@login_required
@require_POST
def cardholder_dispute_escalate(request: HttpRequest) -> HttpResponse:
    """The cardholder asks the operator to review the rejection of their case (the orders
    section of their settings page, or the order's page); another's case is a 404. Back where
    the form was (``_back``)."""
    try:
        dispute_escalate(
            dispute_id=int(request.POST["dispute"]),
            cardholder_id=request.user.cardholder.pk,  # type: ignore[union-attr]
            now=timezone.now(),
        )
        messages.success(request, "We will review the case and e-mail you.")
    except (KeyError, ValueError):
        messages.error(request, "That request was incomplete.")
    except ObjectDoesNotExist as exc:
        raise Http404("No such case.") from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return _back(request)


@login_required
@require_POST
def cardholder_return_request(request: HttpRequest) -> HttpResponse:
    """The cardholder asks to return a delivered order, with a reason (the orders section of
    their settings page); another's order is a 404. A refusal (too late, say) is told as it
    is. Back where the form was (``_back``): the settings page or the order's page."""
    try:
        returned = return_request(
            order_id=int(request.POST["order"]),
            cardholder_id=request.user.cardholder.pk,  # type: ignore[union-attr]
            reason=request.POST.get("reason", ""),
            now=timezone.now(),
        )
        messages.success(
            request,
            f"Your return of order #{returned.order.confirmation_code} is requested: the "
            "merchant answers it, and we e-mail you.",
        )
    except (KeyError, ValueError):
        messages.error(request, "That request was incomplete.")
    except ObjectDoesNotExist as exc:
        raise Http404("No such order.") from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return _back(request)
