"""The buyer's page of one order (issue 13 item 8): only its owner sees it, it tells the order's
story and the time left to confirm, its buttons work, and every e-mail about an order links it."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.messages import order_page_url
from orders.models import Notification, Order, OrderStatus
from orders.pipeline import stage_expire
from tests.shop import BRAND, buyer_ready, order_delivered, post, shop_open, tick

pytestmark = pytest.mark.django_db


def _page_of(order: Order, client: Client | None = None):
    if client is None:
        client = Client()
        client.force_login(order.cardholder.user)
    return client.get(reverse("orders:cardholder_order", args=[order.pk]))


def _pending(handle: str = "alice") -> Order:
    shop_open()
    buyer = buyer_ready(handle)
    post(handle, f"@{BRAND} #BuyKindleFireHD")
    tick()  # decided and the confirmation request posted: the window runs
    order = Order.objects.get(cardholder=buyer.cardholder)
    assert order.status == OrderStatus.PENDING
    assert order.expires_at is not None
    return order


def _steps(html: str) -> list[str]:
    """The timeline's lines, as text (done and still ahead)."""
    timeline = html.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", item)).strip()
        for item in re.findall(r"<li.*?</li>", timeline, re.S)
    ]


def test_a_pending_order_shows_its_code_the_time_left_and_a_cancel_button():
    order = _pending()
    html = _page_of(order).content.decode()
    assert f"#Confirm{order.confirmation_code}" in html
    left = int(re.search(r'data-seconds-left="(\d+)"', html).group(1))
    assert 14 * 60 <= left <= 15 * 60  # the window, as the page was made: no script needed
    assert re.search(r'<time role="timer"[^>]*>1[45]:\d\d</time>', html)
    assert "order_countdown.js" in html
    assert f'name="order" value="{order.pk}"' in html
    assert "Cancel this order" in html
    steps = _steps(html)
    assert steps[0].startswith("Posted #BuyKindleFireHD")
    assert [s.split(" not yet")[0] for s in steps[1:]] == [
        "Confirmed",
        "Paid (card authorized)",
        "Shipped",
        "Delivered",
    ]


def test_the_time_left_runs_down_and_the_countdown_stops_at_the_deadline():
    order = _pending()
    with time_machine.travel(order.expires_at - timedelta(seconds=90), tick=False):
        assert b'data-seconds-left="90"' in _page_of(order).content
        assert b">1:30</time>" in _page_of(order).content
    with time_machine.travel(order.expires_at + timedelta(seconds=1), tick=False):
        html = _page_of(order).content.decode()
    assert "The time to confirm is up" in html
    assert "order_countdown.js" not in html


def test_only_the_owner_sees_the_order_and_others_get_the_same_404_as_for_none():
    order = _pending("alice")
    bob = buyer_ready("bob")
    stranger = Client()
    stranger.force_login(bob.cardholder.user)
    theirs = _page_of(order, stranger)
    missing = stranger.get(reverse("orders:cardholder_order", args=[order.pk + 1000]))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content
    assert order.confirmation_code.encode() not in theirs.content
    signed_out = Client().get(reverse("orders:cardholder_order", args=[order.pk]))
    assert signed_out.status_code == 302
    assert signed_out["Location"].startswith(reverse("account_login"))


def test_cancelling_from_the_order_page_comes_back_to_it_and_ends_the_timeline():
    order = _pending()
    client = Client()
    client.force_login(order.cardholder.user)
    response = client.post(
        reverse("orders:cardholder_order_cancel"), {"order": order.pk, "back": order.pk}
    )
    assert response["Location"] == reverse("orders:cardholder_order", args=[order.pk])
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    html = _page_of(order, client).content.decode()
    assert "Cancel this order" not in html
    assert "data-seconds-left" not in html
    steps = _steps(html)
    assert steps[-1].startswith("Cancelled")
    assert not [s for s in steps if "not yet" in s]  # nothing is ahead of a cancelled order


def test_the_settings_page_cancel_still_goes_back_to_the_settings_page():
    order = _pending()
    client = Client()
    client.force_login(order.cardholder.user)
    response = client.post(reverse("orders:cardholder_order_cancel"), {"order": order.pk})
    assert response["Location"] == reverse("accounts:settings")


def test_a_delivered_order_tells_its_whole_story_with_tracking_and_a_receipt():
    shop_open()
    order = order_delivered("alice")
    html = _page_of(order).content.decode()
    steps = _steps(html)
    assert [s.split(" ")[0] for s in steps] == [
        "Posted",
        "Confirmed",
        "Paid",
        "Label",  # bought: the order is charged; the carrier's scan ships it (issue 14)
        "Shipped",
        "Delivered",
    ]
    assert "not yet" not in " ".join(steps)
    tracking = order.shipment.tracking_number
    assert f"tracking number {tracking}" in html
    assert f'href="https://sandbox-carrier.invalid/track/{tracking}"' in html
    assert reverse("orders:cardholder_receipt_pdf", args=[order.pk]) in html
    # Delivered: the return request the settings page offers is here too, and comes back here.
    assert reverse("orders:cardholder_return_request") in html
    assert f'name="back" value="{order.pk}"' in html


def test_the_settings_page_links_each_order_to_its_page():
    order = _pending()
    client = Client()
    client.force_login(order.cardholder.user)
    html = client.get(reverse("accounts:settings")).content.decode()
    assert f'href="{reverse("orders:cardholder_order", args=[order.pk])}"' in html
    # One card per row on a phone: the browser test measures that it fits 375 pixels.
    assert '<table class="stack" role="table">' in html


def test_every_e_mail_about_an_order_links_its_page():
    shop_open()
    order = order_delivered("alice")
    client = Client()
    client.force_login(order.cardholder.user)
    client.post(
        reverse("orders:cardholder_return_request"), {"order": order.pk, "reason": "Too small"}
    )
    pending = buyer_ready("bob")
    post("bob", f"@{BRAND} #BuyKindleFireHD")
    tick()
    bobs = Order.objects.get(cardholder=pending.cardholder)
    stage_expire(now=timezone.now() + timedelta(hours=1))  # bob never confirms
    bobs.refresh_from_db()
    assert bobs.status == OrderStatus.EXPIRED
    emails = list(Notification.objects.filter(order__isnull=False))
    kinds = {e.kind for e in emails}
    assert {"order_created", "paid", "shipped", "receipt", "return_requested", "expired"} <= kinds
    for email in emails:
        url = order_page_url(email.order_id)
        assert url in email.body, (email.kind, email.body)
        assert email.body.count(url) == 1, email.kind
        if email.html_body:
            assert f'href="{url}"' in email.html_body, email.kind
    # The link opens the page for the owner (the site's address is the test server's here).
    path = order_page_url(order.pk).split("://", 1)[1].split("/", 1)[1]
    assert _page_of(order, client).status_code == 200
    assert client.get("/" + path).status_code == 200


def test_an_e_mail_about_no_order_has_no_order_link():
    shop_open()
    buyer_ready("alice", paused=True)
    post("alice", f"@{BRAND} #BuyKindleFireHD")
    tick()
    (blocked,) = Notification.objects.filter(kind="blocked")
    assert "/orders/" not in blocked.body


def test_not_me_is_offered_until_the_order_ends_and_says_what_it_does():
    order = _pending()
    html = _page_of(order).content.decode()
    assert "Not me: cancel it and pause buying by post" in html
    link = re.search(r'href="(https?://[^"]+/orders/not-me/[^"]+/)"', html)
    assert link is not None
    # The e-mails' signed link (its path: the e-mail names the public site): it opens this order.
    not_me_page = Client().get("/" + link.group(1).split("://", 1)[1].split("/", 1)[1])
    assert not_me_page.status_code == 200
    assert order.confirmation_code.encode() in not_me_page.content
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.EXPIRED)
    assert "/orders/not-me/" not in _page_of(order).content.decode()


def test_not_me_after_shipping_opens_a_case():
    shop_open()
    order = order_delivered("alice")
    assert "Not me: open a case and pause buying by post" in _page_of(order).content.decode()
