"""The cardholder's own pages in a real browser (issue 13 item 8): the order page, the settings
page, the card step and the landing page pass axe-core (no serious or critical violation) on a
375-pixel phone and a 1,280-pixel screen, never scroll sideways on the phone, and keep a
screenshot of each (``var/test-artifacts/browser/<test>/``)."""

import re

import pytest
from playwright.sync_api import expect

from orders.models import Order, OrderStatus
from tests.browser.conftest import PHONE, accessible
from tests.shop import BRAND, buyer_ready, order_delivered, post, shop_open, tick

pytestmark = pytest.mark.django_db(transaction=True)

DESKTOP = {"width": 1280, "height": 900}


def _sign_in(page, email: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", "pw-buyer")
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("link", name="Sign out")).to_be_visible()


def _both_widths(page, shot, name: str) -> None:
    """axe-core and no sideways scroll on the phone, axe-core on a desktop screen; a
    screenshot of each. Leaves the page at the phone's width."""
    page.set_viewport_size(PHONE)
    accessible(page)
    shot(page, f"{name}-375")
    page.set_viewport_size(DESKTOP)
    accessible(page)
    shot(page, f"{name}-1280")
    page.set_viewport_size(PHONE)


def test_the_order_page_counts_down_and_tells_the_story(page, shot):
    shop_open(stock=3)
    delivered = order_delivered("alice")
    shop_open(stock=3, hashtag="BuyEchoDot")
    post("alice", f"@{BRAND} #BuyEchoDot")
    tick()
    pending = Order.objects.get(hashtag="BuyEchoDot")
    assert pending.status == OrderStatus.PENDING
    _sign_in(page, "alice@example.com")

    page.goto(f"/orders/{pending.pk}/")
    expect(page.get_by_role("heading", name=f"Order #{pending.confirmation_code}")).to_be_visible()
    timer = page.get_by_role("timer")
    first = timer.inner_text()
    assert re.fullmatch(r"1[45]:\d\d", first)
    # The script ticks the figure the page was served with.
    expect(timer).not_to_have_text(first, timeout=5_000)
    _both_widths(page, shot, "order-pending")

    page.goto(f"/orders/{delivered.pk}/")
    tracking = page.get_by_role("link", name="Track the parcel")
    expect(tracking).to_have_attribute("href", re.compile(delivered.shipment.tracking_number))
    expect(page.get_by_role("link", name=re.compile(r"Receipt .* \(PDF\)"))).to_be_visible()
    expect(page.get_by_label(re.compile("Why are you returning it"))).to_be_visible()
    _both_widths(page, shot, "order-delivered")

    # Cancelling from the page comes back to it, with the cancel in the story.
    page.goto(f"/orders/{pending.pk}/")
    page.get_by_role("button", name="Cancel this order").click()
    expect(page.get_by_role("status")).to_contain_text("is cancelled")
    expect(page.locator("ol.timeline li").last).to_contain_text("Cancelled")
    _both_widths(page, shot, "order-cancelled")

    # Someone else's order: the same "not found" as no order at all.
    page.goto("/accounts/logout/")
    page.get_by_role("button", name="Sign Out").click()
    buyer_ready("bob")
    _sign_in(page, "bob@example.com")
    assert page.goto(f"/orders/{pending.pk}/").status == 404


def test_the_settings_page_fits_a_phone_and_links_each_order(page, shot):
    shop_open(stock=3)
    delivered = order_delivered("alice")
    _sign_in(page, "alice@example.com")
    page.goto("/link/settings/")
    row = page.get_by_role("row", name=re.compile("Kindle Fire HD"))
    expect(row).to_contain_text("Delivered")
    _both_widths(page, shot, "settings")
    # The limits form keeps what was typed and says which field is wrong.
    page.get_by_label("Most per order ($)").fill("300")
    page.get_by_label("Most per day ($)").fill("100")
    page.get_by_role("button", name="Save limits").click()
    expect(page.get_by_role("alert")).to_contain_text("Most per order: $300.00 is more than")
    expect(page.get_by_label("Most per order ($)")).to_have_value("300")
    _both_widths(page, shot, "settings-limits-refused")
    # Removing a card asks first, without JavaScript's help.
    page.get_by_role("link", name=re.compile("^Remove Visa")).click()
    expect(page.get_by_role("button", name="Yes, remove this card")).to_be_visible()
    _both_widths(page, shot, "card-remove-question")
    page.get_by_role("link", name="No, keep it").click()
    page.get_by_role("row", name=re.compile("Kindle Fire HD")).get_by_role(
        "link", name=f"#{delivered.confirmation_code}"
    ).click()
    expect(page).to_have_url(re.compile(f"/orders/{delivered.pk}/$"))


def test_the_card_step_starts_on_a_future_month_and_keeps_the_expiry(page, shot):
    buyer_ready("alice")
    _sign_in(page, "alice@example.com")
    page.goto("/link/card/")
    _both_widths(page, shot, "card-step")
    page.get_by_label("Card number").fill("4111 1111 1111 1111")  # not a sandbox test card
    page.get_by_label("Expiry month").select_option("7")
    year = page.get_by_label("Expiry year").locator("option").nth(3).inner_text()
    page.get_by_label("Expiry year").select_option(year)
    page.get_by_role("button", name="Save card and continue").click()
    expect(page.locator(".errorlist")).to_contain_text("test card")
    expect(page.get_by_label("Card number")).to_have_value("")  # never echoed back
    expect(page.get_by_label("Expiry month")).to_have_value("7")
    expect(page.get_by_label("Expiry year")).to_have_value(year)
    _both_widths(page, shot, "card-step-refused")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Save card and continue").click()
    # A new card starts from the saved address.
    expect(page.get_by_label("Street address")).to_have_value("1 Main Street")
    _both_widths(page, shot, "address-reused")


def test_the_landing_page_says_how_to_start(page, shot):
    shop_open()
    page.goto("/")
    expect(page.get_by_role("link", name="Link your card")).to_be_visible()
    expect(page.get_by_text(f"@{BRAND}", exact=True)).to_be_visible()
    _both_widths(page, shot, "landing")
