"""The order page as a support view (issue 14, item 1): one timeline of everything that happened
to an order, in a bounded number of queries; the item, buyer handle, totals, address and the
actions that apply now; one order number; times in the merchant's zone; and no link a staff
member can see that answers 403."""

import re
import smtplib
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import cast
from unittest import mock
from urllib.parse import urljoin, urlsplit

import pytest
from allauth.mfa.utils import is_mfa_enabled
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from accounts.services import operator_upsert, staff_user_upsert
from catalog.models import Campaign
from catalog.tests.factories import CampaignFactory
from orders.addresses import ship_to_lines
from orders.models import Notification, Order, OrderEvent, OutboxStatus, PaymentOperation
from orders.services import order_refund
from orders.services.disputes import dispute_escalate, dispute_open, dispute_reject
from orders.services.notifications import notification_send
from orders.services.payments import refund_run
from orders.services.returns import return_request
from orders.timeline import order_timeline
from social.models import Reply
from social.platforms import post_url
from tests.mfa import totp_enable
from tests.shop import order_delivered, order_paid, shop_open

pytestmark = pytest.mark.django_db


def _staff(merchant_id: int, name: str = "staff-a"):
    user = staff_user_upsert(
        username=name, email=f"{name}@example.com", password="pw", merchant_id=merchant_id
    )
    if not is_mfa_enabled(user):
        totp_enable(user)
    return user


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _busy_order() -> Order:
    """A delivered order that went through everything: posts, replies, e-mails, payment
    operations (one failed), a refund with its credit note, a return under way, a case opened
    by "Not me", a staff action, and the carrier's tracking events."""
    order = order_delivered("alice")
    staff = _staff(order.merchant_id)
    now = timezone.now()
    refund = order_refund(
        order_id=order.pk,
        amount=Decimal("10.00"),
        reason="Scratched box",
        restock=False,
        now=now,
        actor_label="admin",
        actor_id=staff.pk,
    )
    refund_run(refund_id=refund.pk, now=now)
    return_request(
        order_id=order.pk, cardholder_id=order.cardholder_id, reason="Too small", now=now
    )
    dispute_open(order_id=order.pk, now=now)
    # Things that went wrong, as the outboxes record them.
    Reply.objects.filter(in_reply_to=order.purchase_post).update(
        status="failed", last_error="platform said no"
    )
    Notification.objects.filter(order=order).filter(kind="shipped").update(
        status="failed", last_error="SMTP 550"
    )
    PaymentOperation.objects.filter(order=order, operation="capture").update(
        attempts=3, last_error="gateway timeout"
    )
    return order


def test_the_timeline_holds_every_kind_of_thing_in_time_order_without_the_buyers_email():
    shop_open()
    order = _busy_order()
    entries = order_timeline(order)
    sources = {e.source for e in entries}
    assert sources >= {
        "post",
        "decision",
        "reply",
        "email",
        "payment",
        "refund",
        "event",
        "shipment",
        "tracking",
    }
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    titles = [e.title for e in entries]
    assert any(t.startswith("Purchase post by @alice on Sandbox") for t in titles)
    assert any(t == "Confirmed" for t in titles)
    assert any(t.startswith("Payment: authorize") for t in titles)
    assert any(t.startswith("Refund 1: 10.00") for t in titles)
    assert "Return requested" in titles
    assert any(t.startswith("Case opened") for t in titles)
    failed_reply = next(e for e in entries if e.source == "reply" and e.status == "failed")
    assert "platform said no" in failed_reply.detail
    assert failed_reply.tone == "failed"
    capture = next(e for e in entries if e.title == "Payment: capture")
    assert "3 attempts" in capture.detail
    assert "gateway timeout" in capture.detail
    refund = next(e for e in entries if e.source == "refund")
    assert refund.actor == "staff-a"  # a staff login is named
    assert any(e.source == "email" and e.status == "failed" for e in entries)
    text = repr(entries)
    assert order.cardholder.user.email not in text
    assert "alice@example.com" not in text


def _timeline_queries(order: Order) -> tuple[int, int]:
    """(queries, entries) of one order's timeline."""
    loaded = Order.objects.select_related("purchase_post").get(pk=order.pk)
    with CaptureQueriesContext(connection) as captured:
        entries = order_timeline(loaded)
    return len(captured), len(entries)


def test_a_mail_server_quoting_the_buyers_address_does_not_show_it_to_staff():
    """An SMTP refusal quotes the recipient: the stored error and the timeline leave it out."""
    shop_open()
    order = order_paid("alice")
    email = order.cardholder.user.email
    mail = Notification.objects.filter(order=order).order_by("id").first()
    assert mail is not None
    Notification.objects.filter(pk=mail.pk).update(
        status=OutboxStatus.PENDING, next_attempt_at=timezone.now()
    )
    refused = smtplib.SMTPRecipientsRefused(
        {email: (550, f"5.1.1 <{email}>: Recipient address rejected".encode())}
    )
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=refused):
        notification_send(notification_id=mail.pk, now=timezone.now())
    mail.refresh_from_db()
    assert "SMTPRecipientsRefused" in mail.last_error
    assert email not in mail.last_error
    shown = [e.detail for e in order_timeline(order) if e.source == "email"]
    assert any("Recipient address rejected" in detail for detail in shown)
    assert not [detail for detail in shown if email in detail]
    # A row stored before errors were redacted is redacted when shown.
    Notification.objects.filter(pk=mail.pk).update(last_error=f"refused: {email}")
    shown = [e.detail for e in order_timeline(order) if e.source == "email"]
    assert not [detail for detail in shown if email in detail]


def test_the_timeline_costs_the_same_queries_however_long_it_is(django_assert_max_num_queries):
    shop_open()
    order = _busy_order()
    queries, entries = _timeline_queries(order)
    assert queries <= 11  # one per source: events, posts, replies, e-mails, payments, ...
    # Ten more of every kind of thing costs no query more.
    now = timezone.now()
    shipment = order.shipment
    for i in range(10):
        at = now + timedelta(minutes=i)
        OrderEvent.objects.create(order=order, created_at=at, kind="note", actor_id=None)
        Notification.objects.create(
            key=f"extra:{i}",
            cardholder=order.cardholder,
            order=order,
            kind="extra",
            to_email="alice@example.com",
            subject="More",
            body="More",
        )
        shipment.events.create(occurred_at=at, status="in_transit", description=f"Hub {i}")
        refund = order_refund(
            order_id=order.pk,
            amount=Decimal("1.00"),
            reason=f"Goodwill {i}",
            restock=False,
            now=at,
            actor_label="admin",
        )
        assert refund.operation is not None
    more_queries, more_entries = _timeline_queries(order)
    assert more_entries >= entries + 40
    assert more_queries == queries
    loaded = Order.objects.select_related("purchase_post").get(pk=order.pk)
    with django_assert_max_num_queries(queries):
        order_timeline(loaded)


def test_the_order_page_is_a_support_view_with_the_actions_that_apply(client):
    shop_open()
    order = _busy_order()
    staff = _staff(order.merchant_id)
    page = _client(staff).get(reverse("admin:orders_order_change", args=[order.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert re.search(rf"<title>[^<]*Order #{order.confirmation_code} \|", html)
    assert f"&rsaquo; Order #{order.confirmation_code}" in html  # the breadcrumb
    assert "Kindle Fire HD" in html
    assert "@alice on Sandbox" in html
    assert "1 Main Street" in html
    assert "Springfield, IL 62701" in html
    assert '"line1"' not in html  # the address is not JSON
    assert order.cardholder.user.email not in html
    # Applies now: refund (captured), the case's and the return's steps, receipt and credit note.
    for css in ("refund-order", "resolve-dispute", "return-step", "receipt", "credit-note"):
        assert f'class="button {css}"' in html, css
    assert 'class="button cancel-order"' not in html  # shipped: too late to cancel


def test_the_order_page_costs_the_same_queries_however_long_its_timeline():
    shop_open()
    order = _busy_order()
    client = _client(_staff(order.merchant_id))
    url = reverse("admin:orders_order_change", args=[order.pk])

    def page_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    page_queries()  # warms Django's content-type cache
    before = page_queries()
    now = timezone.now()
    for i in range(10):
        at = now + timedelta(minutes=i)
        OrderEvent.objects.create(order=order, created_at=at, kind="note")
        order.shipment.events.create(occurred_at=at, status="in_transit", description=f"Hub {i}")
        refund = order_refund(
            order_id=order.pk,
            amount=Decimal("1.00"),
            reason=f"Goodwill {i}",
            restock=False,
            now=at,
            actor_label="admin",
        )
        refund_run(refund_id=refund.pk, now=at)  # each with its credit note
    assert page_queries() == before


def test_the_order_list_and_messages_use_the_code_not_the_pk(client):
    shop_open()
    order = order_paid("alice")
    staff = _staff(order.merchant_id)
    listing = _client(staff).get(reverse("admin:orders_order_changelist")).content.decode()
    assert f">#{order.confirmation_code}</a>" in listing
    assert str(order) == f"Order #{order.confirmation_code}"
    response = _client(staff).post(
        reverse("admin:orders_order_cancel", args=[order.pk]), follow=True
    )
    assert f"Order #{order.confirmation_code} is cancelled." in response.content.decode()


def test_merchant_staff_see_times_in_their_merchants_zone_with_its_abbreviation():
    shop_open()
    order = order_paid("alice")
    order.merchant.time_zone = "America/Los_Angeles"
    order.merchant.save()
    staff = _staff(order.merchant_id)
    created = timezone.localtime(order.created_at, timezone=_zone("America/Los_Angeles"))
    abbreviation = created.tzname()
    assert abbreviation in ("PST", "PDT")
    listing = _client(staff).get(reverse("admin:orders_order_changelist")).content.decode()
    assert f"{created:%H:%M} {abbreviation}" in listing
    page = _client(staff).get(reverse("admin:orders_order_change", args=[order.pk]))
    assert f"{created:%H:%M} {abbreviation}" in page.content.decode()
    # An operator's list is in UTC; one order's page in its merchant's zone.
    operator = operator_upsert(username="ops", email="ops@example.com", password="pw")
    totp_enable(operator)
    ops = _client(operator)
    utc = timezone.localtime(order.created_at, timezone=_zone("UTC"))
    assert f"{utc:%H:%M} UTC" in ops.get(reverse("admin:orders_order_changelist")).content.decode()
    ops_page = ops.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert f"{created:%H:%M} {abbreviation}" in ops_page


def test_the_api_keeps_utc_for_merchant_staff():
    shop_open()
    order = order_paid("alice")
    order.merchant.time_zone = "America/Los_Angeles"
    order.merchant.save()
    staff = _staff(order.merchant_id)
    _, token = AuthToken.objects.create(user=staff)
    client = Client(headers={"Authorization": f"Token {token}"})
    response = client.get(f"/api/v1/orders/{order.pk}/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created_at"].endswith(("Z", "+00:00"))


def _zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def _admin_links(page_url: str, html: str) -> set[str]:
    parser = _Links()
    parser.feed(html)
    links = set()
    for href in parser.hrefs:
        url = urljoin(page_url, href.replace("&amp;", "&"))
        parts = urlsplit(url)
        if parts.netloc in ("", "testserver") and parts.path.startswith("/admin/"):
            links.add(parts.path + (f"?{parts.query}" if parts.query else ""))
    return links


def test_no_link_merchant_staff_see_on_the_order_list_and_page_answers_403():
    """Every link under /admin/ on the order list and on an order page with events of every
    kind, and on the pages of the objects they link (case, return, shipment), answers neither
    403 nor 500."""
    shop_open()
    order = _busy_order()
    other = cast(Campaign, CampaignFactory(hashtag="BuyOtherThing"))
    staff = _staff(order.merchant_id)
    assert other.merchant_id != order.merchant_id
    client = _client(staff)
    pages = [
        reverse("admin:orders_order_changelist"),
        reverse("admin:orders_order_change", args=[order.pk]),
    ]
    followed: dict[str, int] = {}
    seen_pages: set[str] = set()
    while pages:
        page = pages.pop(0)
        seen_pages.add(page)
        response = client.get(page)
        assert response.status_code == 200, page
        for link in sorted(_admin_links(page, response.content.decode())):
            if link in followed or "/logout/" in link:
                continue
            followed[link] = client.get(link).status_code
            # One step further from the objects the order page links.
            if followed[link] == 200 and link not in seen_pages and _CASE_PAGE.search(link):
                pages.append(link)
    assert len(followed) > 15
    bad = {link: status for link, status in followed.items() if status in (403, 500)}
    assert bad == {}
    assert {m.group(1) for link in seen_pages if (m := _CASE_PAGE.search(link))} >= {
        "orders/dispute",
        "orders/return",
        "fulfillment/shipment",
    }


_CASE_PAGE = re.compile(r"^/admin/(orders/dispute|orders/return|fulfillment/shipment)/\d+/change/$")


def test_a_refused_page_is_friendly_and_links_home():
    shop_open()
    order = order_paid("alice")
    staff = _staff(order.merchant_id)
    response = _client(staff).get(reverse("admin:social_post_changelist"))
    assert response.status_code == 403
    html = response.content.decode()
    assert "403 Forbidden" not in html
    assert "not allowed" in html.lower()
    assert 'href="/admin/"' in html


def test_an_escalated_case_is_in_the_timeline_without_a_link_staff_could_not_follow():
    shop_open()
    order = order_delivered("alice")
    staff = _staff(order.merchant_id)
    now = timezone.now()
    dispute = dispute_open(order_id=order.pk, now=now)
    assert dispute is not None
    dispute_url = reverse("admin:orders_dispute_change", args=[dispute.pk])
    page = reverse("admin:orders_order_change", args=[order.pk])
    assert dispute_url in _client(staff).get(page).content.decode()
    dispute_reject(
        dispute_id=dispute.pk, reason="Signed for", now=now, actor_label="admin", actor_id=staff.pk
    )
    dispute_escalate(dispute_id=dispute.pk, cardholder_id=order.cardholder_id, now=now)
    html = _client(staff).get(page).content.decode()
    assert "Case escalated to the operator" in html
    assert dispute_url not in html
    operator = operator_upsert(username="ops", email="ops@example.com", password="pw")
    totp_enable(operator)
    assert dispute_url in _client(operator).get(page).content.decode()


def test_ship_to_is_written_as_an_address():
    assert ship_to_lines(
        {
            "name": "Alice Doe",
            "line1": "1 Main Street",
            "line2": "",
            "city": "Springfield",
            "state": "IL",
            "postal_code": "62701",
            "country": "US",
        }
    ) == ["Alice Doe", "1 Main Street", "Springfield, IL 62701"]
    assert ship_to_lines(
        {"line1": "5 Rue X", "city": "Paris", "postal_code": "75001", "country": "FR"}
    ) == [
        "5 Rue X",
        "Paris, 75001",
        "FR",
    ]


@pytest.mark.parametrize(
    ("platform", "post_id", "handle", "url"),
    [
        ("x", "1860000000000000001", "alice", "https://x.com/alice/status/1860000000000000001"),
        ("x", "not-a-number", "alice", ""),
        (
            "bluesky",
            "at://did:plc:abc123/app.bsky.feed.post/3kxyz",
            "alice.bsky.social",
            "https://bsky.app/profile/did:plc:abc123/post/3kxyz",
        ),
        ("bluesky", "javascript:alert(1)", "alice", ""),
        (
            "mastodon",
            "112233",
            "alice@example.social",
            "https://mastodon.social/@alice@example.social/112233",
        ),
        ("sandbox", "42", "alice", "/sandbox/posts/42/"),
        ("sandbox", "../42", "alice", ""),
        ("nowhere", "42", "alice", ""),
    ],
)
def test_posts_link_to_their_page_on_their_platform(settings, platform, post_id, handle, url):
    settings.MASTODON_API_BASE_URL = "https://mastodon.social"
    assert post_url(platform=platform, post_id=post_id, author_handle=handle) == url


def test_no_page_two_steps_from_the_back_office_home_answers_403_to_merchant_staff():
    """From the home page, every link under /admin/ and every link on the pages they lead to
    (lists, filters, objects, history) answers without a 403 or 500 for merchant staff."""
    shop_open()
    order = _busy_order()
    client = _client(_staff(order.merchant_id))
    depth = {"/admin/": 0}
    queue, status = ["/admin/"], {}
    while queue:
        page = queue.pop(0)
        response = client.get(page)
        status[page] = response.status_code
        html = "text/html" in response.get("Content-Type", "")
        if response.status_code != 200 or depth[page] >= 2 or not html:
            continue
        for link in sorted(_admin_links(page, response.content.decode())):
            if "/logout/" in link or link in depth:
                continue
            depth[link] = depth[page] + 1
            queue.append(link)
    assert len(status) > 50
    assert {page: code for page, code in status.items() if code in (403, 500)} == {}


def test_the_purchase_post_link_opens_the_post_with_its_replies():
    shop_open()
    order = order_paid("alice")
    html = (
        _client(_staff(order.merchant_id))
        .get(reverse("admin:orders_order_change", args=[order.pk]))
        .content.decode()
    )
    link = f"/sandbox/posts/{order.purchase_post.post_id}/"
    assert f'href="{link}"' in html
    page = Client().get(link)
    assert page.status_code == 200
    text = page.content.decode()
    assert "#BuyKindleFireHD" in text
    assert f"#Confirm{order.confirmation_code}" in text  # the confirmation request, a reply
