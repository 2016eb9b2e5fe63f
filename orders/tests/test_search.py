"""Support search on the order list (issue 14, item 3): ``orders.search``.

The parse is a pure function, tested with a table. The search runs on PostgreSQL: merchant
staff find their orders by code, handle, post id or link and a date range in their merchant's
time zone; operators also by e-mail and last four, which never find anything for staff. A last
test loads a realistic table with the benchmark's loader and checks every search's plan reads
indexes only.
"""

import time
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.urls import reverse

from accounts.services import operator_upsert, staff_user_upsert
from accounts.tests.factories import CardFactory, CardholderFactory, UserFactory
from catalog.tests.factories import CampaignFactory
from orders.admin_filters import date_range_ordering
from orders.models import Order
from orders.search import SearchKeys, order_search, search_term_parse
from orders.tests.factories import OrderFactory
from social.models import Platform
from social.tests.factories import PostFactory
from tests.mfa import totp_enable

X, MASTODON, BLUESKY, SANDBOX = Platform.X, Platform.MASTODON, Platform.BLUESKY, Platform.SANDBOX
DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
RKEY = "3l6oveex3ii2l"
URI = f"at://{DID}/app.bsky.feed.post/{RKEY}"


def _digits(term: str) -> tuple[tuple[str, str], ...]:
    return tuple((platform, term) for platform in (X, MASTODON, SANDBOX))


# term -> the keys it means (fields not named are empty).
PARSE_TABLE = [
    # Codes, any case, with or without '#'; a code-shaped word is also a handle.
    ("GAQ37", {"codes": ("GAQ37",), "handles": ("GAQ37",)}),
    ("gaq37", {"codes": ("GAQ37",), "handles": ("GAQ37",)}),
    ("  #gaq37 ", {"codes": ("GAQ37",)}),
    ("#GAQ3", {}),  # too short for a code, and '#' is no handle
    ("#GAQ30", {}),  # '0' is not in the alphabet
    ("GAQ3O", {"handles": ("GAQ3O",)}),  # 'O' neither: only a handle
    # Handles, any case.
    ("@Alice_B", {"handles": ("ALICE_B",)}),
    ("alice.bsky.social", {"handles": ("ALICE.BSKY.SOCIAL",)}),
    ("@alice@mastodon.social", {"handles": ("ALICE@MASTODON.SOCIAL",)}),
    ("@", {}),
    ("two words", {}),
    # Digits: a post id on the platforms whose ids are digits, a handle; four are a last four.
    (
        "1790123456789012345",
        {"handles": ("1790123456789012345",), "posts": _digits("1790123456789012345")},
    ),
    ("4242", {"handles": ("4242",), "posts": _digits("4242"), "last4": "4242"}),
    # E-mail (operators only; also a Mastodon-style handle).
    ("Bob@Example.com", {"handles": ("BOB@EXAMPLE.COM",), "email": "bob@example.com"}),
    ("bob@localhost", {"handles": ("BOB@LOCALHOST",)}),
    ("bob@a@b.com", {"handles": ("BOB@A@B.COM",)}),
    # X links.
    ("https://x.com/alice/status/1790123456789012345", {"posts": ((X, "1790123456789012345"),)}),
    ("https://twitter.com/alice/status/17901234?s=20", {"posts": ((X, "17901234"),)}),
    ("https://mobile.twitter.com/alice/status/123/photo/1", {"posts": ((X, "123"),)}),
    ("x.com/i/web/status/123", {"posts": ((X, "123"),)}),
    ("HTTPS://WWW.X.COM/alice/status/123", {"posts": ((X, "123"),)}),
    ("https://x.com/alice", {}),
    ("https://x.com/alice/status/abc", {}),
    # Mastodon links (any other host).
    (
        "https://mastodon.social/@alice/112233445566778899",
        {"posts": ((MASTODON, "112233445566778899"),)},
    ),
    ("https://hachyderm.io/@bob@mastodon.social/1122", {"posts": ((MASTODON, "1122"),)}),
    ("https://mastodon.social/users/alice/statuses/1122", {"posts": ((MASTODON, "1122"),)}),
    ("https://mastodon.social/web/statuses/1122", {"posts": ((MASTODON, "1122"),)}),
    ("https://example.com/some/page", {}),
    ("https://example.com/@alice", {}),
    # Bluesky: a link naming a DID or a handle, and the AT URI.
    (f"https://bsky.app/profile/{DID}/post/{RKEY}", {"posts": ((BLUESKY, URI),)}),
    (
        f"https://bsky.app/profile/Alice.bsky.social/post/{RKEY}",
        {"bluesky_links": (("ALICE.BSKY.SOCIAL", RKEY),)},
    ),
    (URI, {"posts": ((BLUESKY, URI),)}),
    (
        f"at://alice.bsky.social/app.bsky.feed.post/{RKEY}",
        {"bluesky_links": (("ALICE.BSKY.SOCIAL", RKEY),)},
    ),
    (f"at://{DID}/app.bsky.feed.like/{RKEY}", {}),
    ("https://bsky.app/profile/alice.bsky.social", {}),
    # Hostile input: malformed links, very long terms.
    ("https://[::1/x", {}),
    ("https://x.com/a/status/" + "9" * 40, {}),
    ("a" * 5000, {}),
    ("", {}),
    ("   ", {}),
]


@pytest.mark.parametrize(("term", "expected"), PARSE_TABLE, ids=[t[:40] for t, _ in PARSE_TABLE])
def test_a_term_means_exactly_these_keys(term, expected):
    assert search_term_parse(term) == SearchKeys(**expected)


def test_parsing_a_long_hostile_term_takes_linear_time():
    # A regex that backtracks would take minutes on this; the parse reads it once.
    term = "https://mastodon.social/@" + "a@" * 1000 + "/1"
    started = time.perf_counter()
    search_term_parse(term)
    search_term_parse("a" * 2000 + "@" + "b." * 20 + "!")
    search_term_parse("a@" + "b." * 1000 + "@")
    assert time.perf_counter() - started < 0.5


# --- On the database -----------------------------------------------------------------------------


@pytest.fixture
def world():
    campaign = CampaignFactory()
    other = CampaignFactory()  # another merchant
    holder = CardholderFactory(user=UserFactory(username="carol", email="Carol.Buyer@example.org"))
    card = CardFactory(cardholder=holder, last4="7319")
    post = PostFactory(platform=X, post_id="1790000000000000001", root_id="1789999999999999999")
    order = OrderFactory(
        campaign=campaign,
        cardholder=holder,
        card=card,
        author_handle="CarolShops",
        confirmation_code="GAQ37",
        platform=X,
        purchase_post=post,
    )
    # The same buyer and handle at another merchant: never in staff's results.
    theirs = OrderFactory(
        campaign=other, cardholder=holder, card=card, author_handle="CarolShops", platform=X
    )
    noise = OrderFactory(campaign=campaign, author_handle="someone", confirmation_code="HHHHH")
    return {"order": order, "theirs": theirs, "noise": noise, "merchant": campaign.merchant}


def _found(term, *, merchant=None, operator=False):
    orders = Order.objects.all()
    if merchant is not None:
        orders = orders.filter(merchant=merchant)
    return set(order_search(orders, term, operator=operator).values_list("pk", flat=True))


@pytest.mark.django_db
@pytest.mark.postgres
@pytest.mark.parametrize(
    "term",
    [
        "GAQ37",
        "gaq37",
        "#Gaq37",
        "@carolshops",
        "CAROLSHOPS",
        "1790000000000000001",
        "https://x.com/CarolShops/status/1790000000000000001",
        "https://twitter.com/CarolShops/status/1789999999999999999",  # before an edit
    ],
)
def test_staff_find_their_order_by_code_handle_post_id_or_link(world, term):
    assert _found(term, merchant=world["merchant"]) == {world["order"].pk}


@pytest.mark.django_db
@pytest.mark.postgres
def test_mastodon_and_bluesky_links_find_the_purchase_post():
    campaign = CampaignFactory()
    toot = OrderFactory(
        campaign=campaign,
        platform=MASTODON,
        author_handle="dana@mastodon.social",
        purchase_post=PostFactory(platform=MASTODON, post_id="112233445566778899"),
    )
    skeet = OrderFactory(
        campaign=campaign,
        platform=BLUESKY,
        author_id=DID,
        author_handle="erin.bsky.social",
        purchase_post=PostFactory(platform=BLUESKY, post_id=URI, root_id=URI, author_id=DID),
    )
    # Another Bluesky order of the same author, another post: not found by the first's link.
    OrderFactory(
        campaign=campaign,
        platform=BLUESKY,
        author_id=DID,
        author_handle="erin.bsky.social",
        purchase_post=PostFactory(platform=BLUESKY, post_id=f"at://{DID}/app.bsky.feed.post/3zz"),
    )
    mine = campaign.merchant

    assert _found("https://mastodon.social/@dana/112233445566778899", merchant=mine) == {toot.pk}
    assert _found("@dana@mastodon.social", merchant=mine) == {toot.pk}
    for link in (
        f"https://bsky.app/profile/erin.bsky.social/post/{RKEY}",
        f"https://bsky.app/profile/Erin.Bsky.Social/post/{RKEY}",
        f"https://bsky.app/profile/{DID}/post/{RKEY}",
        URI,
    ):
        assert _found(link, merchant=mine) == {skeet.pk}, link
    assert _found(f"https://bsky.app/profile/other.bsky.social/post/{RKEY}", merchant=mine) == set()


@pytest.mark.django_db
@pytest.mark.postgres
def test_staff_never_find_another_merchants_order(world):
    assert _found("@carolshops", merchant=world["merchant"]) == {world["order"].pk}
    assert _found("@carolshops") == {world["order"].pk, world["theirs"].pk}


@pytest.mark.django_db
@pytest.mark.postgres
@pytest.mark.parametrize("term", ["carol.buyer@example.org", "CAROL.BUYER@EXAMPLE.ORG", "7319"])
def test_operators_find_by_email_or_last_four_and_staff_find_nothing(world, term):
    both = {world["order"].pk, world["theirs"].pk}
    assert _found(term, operator=True) == both
    assert _found(term, merchant=world["merchant"], operator=False) == set()
    assert _found(term, operator=False) == set()


@pytest.mark.django_db
@pytest.mark.postgres
@pytest.mark.parametrize("term", ["nothing-like-it", "https://example.com/a", "#12345"])
def test_a_term_that_means_nothing_finds_nothing(world, term):
    assert _found(term, operator=True) == set()


# --- Through the admin ---------------------------------------------------------------------------
def _staff(client, merchant):
    user = staff_user_upsert(
        username="s", email="s@example.com", password="pw-s", merchant_id=merchant.pk
    )
    totp_enable(user)
    client.force_login(user)
    return user


def _operator(client):
    user = operator_upsert(username="op", email="op@example.com", password="pw-op")
    totp_enable(user)
    client.force_login(user)
    return user


def _listed(client, **params):
    response = client.get(reverse("admin:orders_order_changelist"), params)
    assert response.status_code == 200
    return response, {order.pk for order in response.context["cl"].result_list}


@pytest.mark.django_db
@pytest.mark.postgres
def test_the_order_list_searches_and_never_leaks_an_email_or_card_to_staff(client, world):
    _staff(client, world["merchant"])
    _, by_code = _listed(client, q="#gaq37")
    assert by_code == {world["order"].pk}
    for term in ("carol.buyer@example.org", "7319"):
        response, shown = _listed(client, q=term)
        assert shown == set()
        page = reverse("admin:orders_order_change", args=[world["order"].pk])
        assert page not in response.content.decode()

    _operator(client)
    _, shown = _listed(client, q="carol.buyer@example.org")
    assert shown == {world["order"].pk, world["theirs"].pk}


def _created(order, moment):
    Order.objects.filter(pk=order.pk).update(created_at=moment)


@pytest.mark.django_db
@pytest.mark.postgres
def test_the_date_range_is_whole_days_in_the_merchants_time_zone(client, world):
    merchant = world["merchant"]
    merchant.time_zone = "America/New_York"
    merchant.save(update_fields=["time_zone"])
    # 03:30 UTC on 10 March is the evening of 9 March in New York.
    _created(world["order"], datetime(2026, 3, 10, 3, 30, tzinfo=UTC))
    _created(world["noise"], datetime(2026, 3, 11, 12, 0, tzinfo=UTC))
    _created(world["theirs"], datetime(2026, 3, 9, 12, 0, tzinfo=UTC))

    _staff(client, merchant)
    response, shown = _listed(client, created_from="2026-03-09", created_to="2026-03-09")
    assert shown == {world["order"].pk}
    assert b"America/New_York" in response.content
    assert _listed(client, created_from="2026-03-10", created_to="2026-03-10")[1] == set()
    assert _listed(client, created_from="2026-03-10")[1] == {world["noise"].pk}
    assert _listed(client, created_to="2026-03-10")[1] == {world["order"].pk}
    # With a search: both apply.
    assert _listed(client, created_to="2026-03-10", q="HHHHH")[1] == set()

    _operator(client)  # in UTC: the order is on 10 March
    assert _listed(client, created_from="2026-03-10", created_to="2026-03-10")[1] == {
        world["order"].pk
    }


@pytest.mark.django_db
@pytest.mark.postgres
def test_the_date_range_works_with_facet_counts_and_keeps_the_other_filters(client, world):
    _staff(client, world["merchant"])
    response, shown = _listed(
        client, _facets="", status__exact="pending", created_from="2000-01-01", q="#GAQ37"
    )
    assert shown == {world["order"].pk}
    html = response.content.decode()
    assert '<input type="hidden" name="status__exact" value="pending">' in html
    assert '<input type="hidden" name="q" value="#GAQ37">' in html


@pytest.mark.django_db
@pytest.mark.postgres
def test_a_date_that_is_not_a_date_is_ignored_not_an_error(client, world):
    _staff(client, world["merchant"])
    for bad in (
        {"created_from": "2026-13-45"},
        {"created_to": "9999-12-31"},
        {"created_from": "0001-01-01"},
    ):
        response, shown = _listed(client, **bad)
        assert shown == {world["order"].pk, world["noise"].pk}, bad
        assert "is not a date" in response.content.decode()


# --- Every search is an index lookup -------------------------------------------------------------
# Tables an order search reads, and the indexes each key must use on them. A sequential scan of
# any of these tables, or a key read through another index, fails the test.
SCANNED_TABLES = ("orders_order", "social_post", "accounts_card", "accounts_user")
DATE_RANGE_ORDERING = ("-created_at", "-id")


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (COSTS OFF) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.django_db
@pytest.mark.postgres
def test_every_search_reads_indexes_on_a_realistic_table():
    """20,000 orders of the benchmark (two merchants, 2,000 buyers, one post each), analysed,
    with the planner left to choose: each key's lookup must come from its index."""
    from devtools.bench_admin import bench_orders_load, bench_search_sample, bench_world_ensure
    from orders.search import order_created_between

    bench = bench_world_ensure()
    bench_orders_load(target=20_000, progress=lambda done, total: None, chunk=20_000)
    found = bench_search_sample(bench)
    page = Order.objects.select_related("merchant").order_by("-id")
    staff = page.filter(merchant=bench.merchant_a)
    cases = [
        (staff, found.code, False, "order_code_idx"),
        (staff, f"@{found.handle.upper()}", False, "order_author_handle_upper_idx"),
        (staff, found.post_id, False, "post_unique_platform_id"),
        (staff, f"https://x.com/a/status/{found.post_id}", False, "post_root_idx"),
        (page, found.email, True, "user_unique_email_ci"),
        (page, found.last4, True, "card_last4_idx"),
    ]
    for orders, term, operator, index in cases:
        plan = _plan(order_search(orders, term, operator=operator)[:50])
        assert index in plan, f"{term}: {plan}"
        for table in SCANNED_TABLES:
            assert f"Seq Scan on {table}" not in plan, f"{term}: {plan}"

    # A date range, as the list orders it then (``date_range_ordering``): a month long ago is
    # read from its place in the created-at index, not found by walking back from the newest.
    day = datetime.fromisoformat(found.day).date()
    month = (datetime.fromisoformat(found.month_start).date(), day)
    # (Staff's may use either: with two merchants, half the rows of the range are theirs.)
    for orders in (staff, page):
        for start, end in ((day, day), month):
            dated = order_created_between(orders, start, end, zone=UTC)
            plan = _plan(dated.order_by(*DATE_RANGE_ORDERING)[:50])
            assert "order_created_idx" in plan or "order_merchant_created_idx" in plan, plan
            assert "Seq Scan on orders_order" not in plan, plan
            assert "orders_order_pkey" not in plan, plan


def test_a_date_range_orders_the_list_as_the_created_at_indexes_do(rf):
    indexes = {index.name: index for index in Order._meta.indexes}
    assert date_range_ordering(rf.get("/", {"created_to": "2026-01-01"})) == DATE_RANGE_ORDERING
    assert tuple(indexes["order_created_idx"].fields) == DATE_RANGE_ORDERING
    # The merchant's index is ascending on every column (the sales report scans it forwards), so
    # the list's all-descending order is the same index read backwards.
    assert tuple(indexes["order_merchant_created_idx"].fields) == (
        "merchant",
        *(field.lstrip("-") for field in DATE_RANGE_ORDERING),
    )
    assert date_range_ordering(rf.get("/", {"q": "x"})) is None
