"""The near-miss rules, pure (``orders.services.decide.hints.hint_for``): a table of posts and
what each is read as (issue 13, item 5)."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Campaign, Product
from orders.services.decide.hints import OpenOrder, _distance, hint_for
from social.hashtags import extract_hashtags, hashtag_key

NOW = timezone.now()
KINDLE = Campaign(
    hashtag="BuyKindleFireHD",
    hashtag_key="buykindlefirehd",
    starts_at=NOW - timedelta(days=1),
    ends_at=NOW + timedelta(days=1),
    product=Product(name="Kindle Fire HD"),
)
TEE = Campaign(
    hashtag="BuyTee",
    hashtag_key="buytee",
    starts_at=NOW - timedelta(days=1),
    ends_at=NOW + timedelta(days=1),
    product=Product(name="Tee"),
)
ORDER = OpenOrder(code="K7Q2M", prefix="Confirm")


def _instead(text: str, orders: list[OpenOrder] | None = None) -> str | None:
    keys = [hashtag_key(t.text) for t in extract_hashtags(text)]
    hint = hint_for(keys=keys, text=text, orders=orders or [ORDER], live=[KINDLE, TEE])
    return hint.instead if hint is not None else None


@pytest.mark.parametrize(
    ("text", "instead"),
    [
        ("@brand #Confirm K7Q2M", "#ConfirmK7Q2M"),
        ("@brand #confirm k7q2m!", "#ConfirmK7Q2M"),
        ("@brand #Confirm K7Q2N", "#ConfirmK7Q2M"),
        ("@brand #ConfirmK7Q2N", "#ConfirmK7Q2M"),
        ("@brand #ConfirmK7Q2O", "#ConfirmK7Q2M"),  # a letter outside the codes' alphabet
        ("@brand #Confirm K7Q99", None),  # two characters off
        ("@brand #Confirm", None),
        ("@brand #Confirm @K7Q2M", None),
        ("@brand #Buy KindleFireHD", "#BuyKindleFireHD"),
        ("@brand #buy kindle fire hd", "#BuyKindleFireHD"),
        ("@brand #BuyKindle FireHD.", "#BuyKindleFireHD"),
        ("@brand #Buy Kindle", None),
        ("@brand #Buy #KindleFireHD", None),
        ("@brand #BuyKindelFireHD", "#BuyKindleFireHD"),
        ("@brand #BuyKindleFire", "#BuyKindleFireHD"),
        ("@brand #BuyKindle", None),  # six edits away
        ("@brand #BuyTea", "#BuyTee"),
        ("@brand #BuyTeaa", None),  # two edits from a short hashtag: too loose
        ("@brand #Buy Tee", "#BuyTee"),
        ("@brand #Hello world", None),
        ("@brand no hashtag at all", None),
    ],
)
def test_what_a_near_miss_is_read_as(text, instead):
    assert _instead(text) == instead


def test_a_code_one_character_from_two_of_the_authors_orders_gets_no_hint():
    orders = [ORDER, OpenOrder(code="K7Q2P", prefix="Confirm")]
    assert _instead("@brand #ConfirmK7Q2N", orders) is None


def test_the_bounded_distance():
    assert _distance("kitten", "sitting", 3) == 3
    assert _distance("kitten", "sitting", 2) == 3  # beyond the limit: limit + 1
    assert _distance("abc", "abc", 1) == 0
    assert _distance("a" * 60, "b" * 60, 2) == 3


def test_a_hostile_post_is_read_in_bounded_time():
    text = " ".join(["#Buy", "Kindle"] * 5_000) + " #BuyKindleFireHQ" * 500
    start = time.perf_counter()
    _instead(text)
    assert time.perf_counter() - start < 1
