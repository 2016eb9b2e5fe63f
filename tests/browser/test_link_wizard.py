"""A new cardholder opts in on /link/ and buys by post, in a real browser (issue 4).

The pipeline runs in the test (``tick``) between the browser's steps, on the live server's
database; the pages poll for its results by themselves, as they do for a real person.
"""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from orders.models import Order, OrderStatus
from tests.browser.conftest import accessible
from tests.shop import BRAND, shop_open, tick

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "carol@example.com"
PASSWORD = "correct-horse-battery"


def _sandbox_post(sandbox, handle: str, text: str) -> None:
    sandbox.goto("/sandbox/")
    if sandbox.locator("#text").count() == 0:
        sandbox.fill("#handle", handle)
        sandbox.get_by_role("button", name="Use this handle").click()
    sandbox.fill("#text", text)
    sandbox.get_by_role("button", name="Post").click()


def _sign_up(page, shot) -> None:
    page.goto("/accounts/signup/")
    accessible(page)
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    shot(page, "sign-up")
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_role("heading", name="Verify Your Email Address")).to_be_visible()
    links = [
        found.group(0)
        for message in mail.outbox
        if message.to == [EMAIL]
        and (found := re.search(r"https?://\S+/accounts/confirm-email/\S+/", str(message.body)))
    ]
    assert len(links) == 1, [(m.to, m.subject) for m in mail.outbox]
    link = links[0]
    page.goto(link)
    accessible(page)
    shot(page, "confirm-email")
    page.get_by_role("button", name="Confirm").click()
    if "/accounts/login/" in page.url:
        page.fill("input[name=login]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        page.get_by_role("button", name="Sign In").click()
    page.goto("/link/")
    expect(page.get_by_role("heading", name="Buy by posting a hashtag")).to_be_visible()


def _link_sandbox_identity(page, shot, handle: str) -> None:
    page.get_by_role("link", name="Continue: connect a social account").click()
    link_post = page.locator("#link-post").inner_text()
    assert re.fullmatch(rf"@{BRAND} #Link[2-9A-HJKMNP-Z]{{6}}", link_post)
    accessible(page)
    shot(page, "identity-code")
    sandbox = page.context.new_page()
    _sandbox_post(sandbox, handle, link_post)
    accessible(sandbox)
    shot(sandbox, "sandbox-link-post")
    sandbox.close()
    tick()
    # The page follows the code by itself and moves on once the pipeline has linked it.
    expect(page.locator("#link-status")).to_have_text(f"Linked @{handle}.")
    shot(page, "identity-linked")
    page.wait_for_url("**/link/")


def _add_card_address_consent(page, shot) -> None:
    page.get_by_role("link", name="Continue: add a card").click()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry month").select_option("12")
    page.get_by_label("Expiry year").select_option(index=5)
    accessible(page)
    shot(page, "card")
    page.get_by_role("button", name="Save card and continue").click()
    page.get_by_label("Name on the card").fill("Carol Buyer")
    page.get_by_label("Street address").fill("1 Main Street")
    page.get_by_label("City").fill("Springfield")
    page.get_by_label("State").select_option("IL")
    page.get_by_label("ZIP code").fill("62701")
    accessible(page)
    shot(page, "address")
    page.get_by_role("button", name="Save address and card").click()
    expect(page.get_by_role("heading", name="The terms of buying by post")).to_be_visible()
    checkbox = page.get_by_label("I agree to the terms of buying by post above")
    expect(checkbox).not_to_be_checked()
    accessible(page)
    shot(page, "consent")
    checkbox.check()
    page.get_by_role("button", name="Agree and finish").click()
    expect(page.get_by_role("heading", name="Your settings")).to_be_visible()


def test_a_new_cardholder_opts_in_and_buys_by_post(page, shot, settings):
    # The cooling-off after linking is tested elsewhere; here the buyer may buy at once.
    settings.HASHCART = {**settings.HASHCART, "COOLING_OFF_HOURS": 0}
    shop_open(stock=3)
    _sign_up(page, shot)
    _link_sandbox_identity(page, shot, "carol")
    _add_card_address_consent(page, shot)
    accessible(page)
    shot(page, "settings-ready")

    sandbox = page.context.new_page()
    _sandbox_post(sandbox, "carol", f"@{BRAND} #BuyKindleFireHD")
    tick()
    reply = sandbox.locator("#timeline li", has_text="#Confirm")
    expect(reply).to_have_count(1, timeout=10_000)
    code = re.search(r"#Confirm([2-9A-HJKMNP-Z]{5})", reply.inner_text()).group(1)
    shot(sandbox, "confirmation-request")
    _sandbox_post(sandbox, "carol", f"@{BRAND} #Confirm{code}")
    tick()
    tick()  # the authorization runs from the outbox after the confirmation's batch
    assert Order.objects.get().status == OrderStatus.PAID

    page.goto("/link/settings/")
    row = page.get_by_role("row", name=re.compile(f"#{code}"))
    expect(row).to_contain_text("Kindle Fire HD")
    expect(row).to_contain_text("Paid")
    accessible(page)
    shot(page, "order-history")
    with page.expect_download() as download:
        row.get_by_role("link", name=f"Receipt (PDF) of order {code}").click()
    assert re.fullmatch(r"[A-Z0-9-]+-R-000001\.pdf", download.value.suggested_filename)
