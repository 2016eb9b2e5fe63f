"""The order change list's columns (issue 10, item 21)."""

import re

import pytest
from django.urls import reverse

from accounts.services import operator_upsert
from fulfillment.tests.test_labels_and_tracking import paid_order
from tests.mfa import totp_enable
from tests.shop import shop_open

pytestmark = pytest.mark.django_db


def test_the_order_total_column_is_titled_total_and_sorts_by_total(client):
    shop_open()
    cheap, dear = paid_order("bob"), paid_order("carol")
    type(dear).objects.filter(pk=dear.pk).update(
        unit_price="999.00", subtotal="999.00", tax_total="0.00", tax_lines=[], total="999.00"
    )
    operator = operator_upsert(username="ops", email="ops@example.com", password="pw")
    totp_enable(operator)
    client.force_login(operator)
    url = reverse("admin:orders_order_changelist")
    page = client.get(url).content.decode()
    header = re.search(r'<th scope="col" class="([^"]*column-money[^"]*)">(.*?)</th>', page, re.S)
    assert header is not None
    assert "sortable" in header.group(1)
    link = re.search(r'<a href="(\?o=[^"]+)">Total</a>', header.group(2))
    assert link is not None
    by_total = client.get(url + link.group(1).replace("&amp;", "&")).content.decode()
    rows = [f"/admin/orders/order/{order.pk}/change/" for order in (cheap, dear)]
    assert page.index(rows[1]) < page.index(rows[0])  # newest first by default
    assert by_total.index(rows[0]) < by_total.index(rows[1])  # then cheapest first


def test_the_order_page_shows_subtotal_tax_by_jurisdiction_and_total(client):
    shop_open()
    order = paid_order("bob")  # Springfield, Illinois
    operator = operator_upsert(username="ops", email="ops@example.com", password="pw")
    totp_enable(operator)
    client.force_login(operator)
    page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    for label, value in [
        ("Subtotal", "149.00"),
        ("Sales tax by jurisdiction", "Illinois 6.25%: 9.31"),
        ("Tax total", "9.31"),
        ("Total", "158.31"),
    ]:
        field = re.search(rf"<label>{label}:</label>\s*<div class=\"readonly\">([^<]*)</div>", page)
        assert field is not None, label
        assert field.group(1).strip() == value


def test_the_campaign_form_asks_whether_the_price_includes_tax(client):
    shop_open()
    operator = operator_upsert(username="ops", email="ops@example.com", password="pw")
    totp_enable(operator)
    client.force_login(operator)
    page = client.get(reverse("admin:catalog_campaign_add")).content.decode()
    assert 'name="price_includes_tax"' in page
