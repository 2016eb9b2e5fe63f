"""Property: whatever arrives, deciding never raises and gives each post exactly one outcome
(issue 10 §6, DESIGN §3.2). Posts of any Unicode text up to 10,000 characters, with random
hashtags, prefixes and codes, among them the live campaigns' hashtags and the codes of real
pending orders, are stored through the inbox and decided on PostgreSQL."""

import contextlib
import io
import itertools
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.tests.factories import CampaignFactory
from orders.models import CONFIRMATION_ALPHABET, Order
from orders.outcomes import PostOutcome
from orders.services import posts_decide
from social.models import PlatformAccount, Post, PostKind
from social.platforms.base import InboundPost
from social.services import inbox_store
from tests.shop import BRAND, buyer_ready, post, shop_open, tick

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

_ids = itertools.count(1)
LIVE = ["BuyKindleFireHD", "BuyActionCamPack"]
PREFIXES = ["Confirm", "Yes", "Link", "Buy", "BuyKindleF", "ConfirmOrder", ""]
# Every character, NUL and lone surrogates included (the inbox stores them as U+FFFD; the test
# at the end of this module pins it through a replayed page).
_CHARACTERS = st.characters()


def _world() -> dict:
    """Two live campaigns (one with its own confirmation prefix), linked buyers with pending
    orders, an unlinked author, and the brand itself."""
    shop = shop_open(stock=50, hashtag=LIVE[0])
    CampaignFactory(hashtag=LIVE[1], confirm_prefix="Yes", stock_total=1)
    buyers = [buyer_ready(f"buyer{n}") for n in range(4)]
    for buyer in buyers[:3]:
        post(buyer.handle, f"@{BRAND} #{LIVE[0]}")
    tick()  # their orders are pending, their requests posted, their windows open
    codes = list(Order.objects.values_list("confirmation_code", flat=True))
    assert len(codes) == 3
    authors = [str(b.user.pk) for b in buyers] + ["999999", str(shop.brand.pk)]
    return {"account": shop.account, "codes": codes, "authors": authors}


def _hashtag(codes: list[str]) -> st.SearchStrategy[str]:
    code = st.sampled_from(codes) | st.text(alphabet=CONFIRMATION_ALPHABET, min_size=0, max_size=7)
    return st.one_of(
        st.sampled_from(LIVE),
        st.sampled_from(LIVE).map(str.lower),
        st.sampled_from(LIVE).map(lambda tag: "".join(chr(ord(c) + 0xFEE0) for c in tag)),
        st.tuples(st.sampled_from(PREFIXES), code).map("".join),
        st.tuples(st.sampled_from(PREFIXES), code).map(lambda p: (p[0] + p[1]).lower()),
        # Anything at all, as a platform's own entities may carry it (but see _CHARACTERS).
        st.text(_CHARACTERS, max_size=300),
    )


def _posts(codes: list[str], authors: list[str]) -> st.SearchStrategy[list[dict]]:
    text = st.text(_CHARACTERS, max_size=10_000)
    one = st.fixed_dictionaries(
        {
            "author": st.sampled_from(authors),
            "text": text,
            "hashtags": st.lists(_hashtag(codes), max_size=6),
            "quoted": st.lists(_hashtag(codes), max_size=2),
            "kind": st.sampled_from(list(PostKind.values)),
            "minutes_ago": st.integers(min_value=-5, max_value=60 * 24 * 3),
            "edit": st.booleans(),
        }
    )
    return st.lists(one, min_size=1, max_size=5)


def _inbound(spec: dict, now) -> InboundPost:
    post_id = str(next(_ids) + 10_000_000)
    return InboundPost(
        platform="sandbox",
        post_id=post_id,
        root_id=str(int(post_id) - 1) if spec["edit"] else post_id,
        author_id=spec["author"],
        author_handle=f"h{spec['author']}",
        text=spec["text"],
        hashtags=tuple(spec["hashtags"]),
        kind=spec["kind"],
        created_at=now - timedelta(minutes=spec["minutes_ago"]),
        quoted_hashtags=tuple(spec["quoted"]),
    )


def test_any_posts_decide_without_raising_to_exactly_one_outcome_each(fuzzing):
    world = _world()
    account = PlatformAccount.objects.get(pk=world["account"].pk)
    outcomes = set(PostOutcome.values)

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(specs=_posts(world["codes"], world["authors"]))
    def decide_any(specs):
        with transaction.atomic():  # each example apart: a failure does not spill over
            _store_and_decide(account, specs, outcomes)

    decide_any()


def _store_and_decide(account: PlatformAccount, specs: list[dict], outcomes: set[str]) -> None:
    now = timezone.now()
    inbound = [_inbound(spec, now) for spec in specs]
    inbox_store(account=account, posts=inbound)
    ids = list(
        Post.objects.filter(post_id__in=[p.post_id for p in inbound]).values_list("pk", flat=True)
    )
    assert len(ids) == len(inbound)

    counts = posts_decide(post_ids=ids, now=now)

    decided = dict(Post.objects.filter(pk__in=ids).values_list("pk", "outcome"))
    assert sum(counts.values()) == len(ids)
    assert all(outcome in outcomes for outcome in decided.values()), decided
    assert not posts_decide(post_ids=ids, now=now)  # decided once, for good
    assert dict(Post.objects.filter(pk__in=ids).values_list("pk", "outcome")) == decided


@pytest.mark.parametrize("bad", ["hello\u0000", "\ud800 hello"], ids=["nul", "lone-surrogate"])
def test_a_post_the_database_cannot_store_as_is_does_not_stop_the_rest_of_its_page(tmp_path, bad):
    shop_open()
    page = {
        "data": [
            {
                "id": "1860000000000000001",
                "text": f"@HashcartDeals {bad} #BuyKindleFireHD",
                "author_id": "4001",
                "created_at": "2026-11-29T10:00:00.000Z",
            },
            {
                "id": "1860000000000000002",
                "text": "@HashcartDeals #BuyKindleFireHD",
                "author_id": "4002",
                "created_at": "2026-11-29T10:00:01.000Z",
            },
        ],
        "includes": {
            "users": [{"id": "4001", "username": "bad"}, {"id": "4002", "username": "ok"}]
        },
        "meta": {"result_count": 2, "newest_id": "1860000000000000002"},
    }
    replay = tmp_path / "page.json"
    replay.write_text(json.dumps(page))  # escaped as X would send them: \u0000, \ud800
    # A one-line refusal naming the bad item is fine; a DataError traceback is not.
    with contextlib.suppress(CommandError):
        call_command("replay_posts", str(replay), "--platform", "x", stdout=io.StringIO())
    assert Post.objects.filter(post_id="1860000000000000002").exclude(outcome="").exists()
