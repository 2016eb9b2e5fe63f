"""Public replies fit their platform's length rule (issue 10, item 4): X's weighted length
(twitter-text: CJK and emoji weigh 2) up to 280, Mastodon's 500, the sandbox's 280 characters.
The product's name is shortened first, then left out; the handle, the code and the window
never are."""

from datetime import timedelta
from decimal import Decimal
from typing import cast

import pytest
from django.utils import timezone
from twitter_text import parse_tweet

from accounts.services import identity_link
from catalog.models import Campaign, Product
from catalog.tests.factories import CampaignFactory, ProductFactory
from orders import messages
from orders.models import Order
from orders.services import posts_decide
from orders.tests.factories import OrderFactory
from sandbox.adapter import SandboxAdapter
from social.models import Reply
from social.platforms import reply_fits
from social.platforms.mastodon import MastodonAdapter, countable_text
from social.platforms.x import XAdapter
from social.tests.factories import PlatformAccountFactory, PostFactory
from tests.shop import buyer_ready

pytestmark = pytest.mark.django_db

NAME_MAX = Product._meta.get_field("name").max_length or 0
PREFIX_MAX = Campaign._meta.get_field("confirm_prefix").max_length or 0
# The longest handle each platform gives: X's 15, the sandbox's 50, a Mastodon acct of a
# remote server (only ``@user`` of it counts on Mastodon), and a Bluesky handle, a domain name
# of 253 characters (each counts on Bluesky, against 300 graphemes).
HANDLES = {
    "x": "a" * 15,
    "sandbox": "s" * 50,
    "mastodon": "m" * 30 + "@" + "remote-server." * 140 + "example",
    "bluesky": ("b" * 62 + ".") * 3 + "b" * 52 + ".bsky.social",
}
NAMES = {
    "latin": ("Kindle Fire HD " * 20)[:NAME_MAX],
    "cjk": "電子書籍リーダー" * (NAME_MAX // 8),
    "emoji": "👩‍👩‍👧‍👦" * (NAME_MAX // 7),
    "short": "Kindle Fire HD",
}


def _order(platform: str, name: str) -> Order:
    campaign = CampaignFactory(
        platform=platform,
        product=ProductFactory(name=name),
        hashtag="Buy" + "x" * 97,
        confirm_prefix="C" * PREFIX_MAX,
        price=Decimal("99999999.99"),
    )
    return cast(
        Order,
        OrderFactory(
            campaign=campaign,
            platform=platform,
            author_handle=HANDLES[platform],
            confirmation_code="K7Q2M",
        ),
    )


def _name_in(text: str, name: str) -> str:
    """How the product's name appears in ``text``: whole, shortened (a prefix and "…"), or ''."""
    if name in text:
        return "whole"
    start = text.find(name[:1])
    if start != -1 and "…" in text[start:]:
        shown = text[start : text.index("…", start)]
        assert name.startswith(shown)
        return "shortened"
    return ""


@pytest.mark.parametrize("platform", ["x", "mastodon", "bluesky", "sandbox"])
@pytest.mark.parametrize("script", list(NAMES))
def test_the_confirmation_request_fits_and_keeps_handle_code_and_window(platform, script):
    name = NAMES[script]
    order = _order(platform, name)
    text = messages.reply_confirmation_request(
        order=order, prefix=order.campaign.confirm_prefix, window_minutes=15
    )
    assert reply_fits(platform=platform, text=text)
    assert text.startswith(f"@{HANDLES[platform]} To buy ")
    assert f"#{'C' * PREFIX_MAX}K7Q2M within 15 minutes." in text
    assert _name_in(text, name) in (("whole",) if script == "short" else ("whole", "shortened"))


@pytest.mark.parametrize("platform", ["x", "mastodon", "bluesky", "sandbox"])
@pytest.mark.parametrize("script", list(NAMES))
def test_every_reply_builder_fits_its_platform_with_maximal_values(platform, script):
    order = _order(platform, NAMES[script])
    handle, campaign = HANDLES[platform], order.campaign
    replies = {
        "paid": messages.reply_paid(order=order),
        "declined": messages.reply_declined(order=order),
        "email_pending": messages.reply_confirm_email_pending(order=order),
        "late": messages.reply_confirm_late(handle=handle, code="K7Q2M"),
        "sold_out": messages.reply_sold_out(handle=handle, campaign=campaign),
        "waitlisted": messages.reply_waitlisted(handle=handle, campaign=campaign),
        "closed": messages.reply_closed(handle=handle, campaign=campaign),
        "blocked": messages.reply_blocked(handle=handle, campaign=campaign),
        "invite": messages.reply_invite(handle=handle, campaign=campaign),
        "not_yet": messages.reply_closed(
            handle=handle, campaign=campaign, posted_at=campaign.starts_at - timedelta(days=1)
        ),
        "ended": messages.reply_closed(
            handle=handle, campaign=campaign, posted_at=campaign.ends_at
        ),
    }
    for kind, text in replies.items():
        assert reply_fits(platform=platform, text=text), (kind, text)
        assert text.startswith(f"@{handle} "), kind
    for kind in ("paid", "declined", "email_pending", "late"):
        assert "#K7Q2M" in replies[kind], kind


def test_on_x_a_long_name_is_shortened_to_the_limit_before_it_is_left_out():
    order = _order("x", NAMES["latin"])
    text = messages.reply_confirmation_request(order=order, prefix="Confirm", window_minutes=15)
    assert parse_tweet(text).weightedLength in (279, 280)  # one more character would not fit
    assert "To buy Kindle Fire HD Kindle" in text
    assert _name_in(text, NAMES["latin"]) == "shortened"


def test_on_x_a_150_character_name_no_longer_makes_the_request_too_long():
    order = _order("x", "A" * 150)  # over 280 whole, with a 15-character handle
    order.unit_price = Decimal("149.00")
    text = messages.reply_confirmation_request(order=order, prefix="Confirm", window_minutes=15)
    assert parse_tweet(text).valid
    assert text.startswith(f"@{HANDLES['x']} To buy AAAA")
    assert "for $149.00 (+tax, free 2-day shipping) post #ConfirmK7Q2M within 15 minutes" in text


def test_an_emoji_name_is_cut_between_graphemes():
    family = "👩‍👩‍👧‍👦"
    # On the sandbox every code point counts, so 28 families of 7 do not fit whole.
    order = _order("sandbox", NAMES["emoji"])
    text = messages.reply_paid(order=order)
    assert "…" in text
    shown = text.split("Thanks! ", 1)[1].split("…", 1)[0]
    assert shown
    assert shown == family * (len(shown) // len(family))


class _Tight(SandboxAdapter):
    """A platform whose limit leaves no room for even one grapheme of a family emoji."""

    max_reply_length = len(
        "@alice To buy it for $99999999.99 (+tax, free 2-day shipping) post "
        f"#{'C' * PREFIX_MAX}K7Q2M within 15 minutes. Not you? Ignore this and it lapses."
    )


def test_the_name_is_left_out_when_no_shortening_fits(settings):
    settings.HASHCART = {
        **settings.HASHCART,
        "PLATFORM_ADAPTERS": {"sandbox": f"{__name__}._Tight"},
    }
    order = _order("sandbox", "👩‍👩‍👧‍👦" * 3)
    order.author_handle = "alice"
    text = messages.reply_confirmation_request(
        order=order, prefix=order.campaign.confirm_prefix, window_minutes=15
    )
    assert text.startswith("@alice To buy it for $99999999.99")
    assert f"#{'C' * PREFIX_MAX}K7Q2M within 15 minutes." in text
    assert _Tight.fits(text)


def test_each_platform_states_its_rule_in_one_place():
    assert (XAdapter.max_reply_length, MastodonAdapter.max_reply_length) == (280, 500)
    assert SandboxAdapter.max_reply_length == 280
    assert XAdapter.fits("a" * 280)
    assert not XAdapter.fits("a" * 281)
    assert XAdapter.fits("字" * 140)
    assert not XAdapter.fits("字" * 141)
    assert SandboxAdapter.fits("字" * 280)
    assert MastodonAdapter.fits("a" * 500)
    assert not MastodonAdapter.fits("a" * 501)


def test_mastodon_counts_a_remote_mention_by_its_user_and_a_link_as_23():
    assert countable_text("@alice@very.long.example.social hi") == "@alice hi"
    assert len(countable_text("see https://e.co")) == len("see ") + 23
    assert MastodonAdapter.fits(f"@{HANDLES['mastodon']} " + "a" * 400)


def test_deciding_an_x_purchase_of_a_longest_name_queues_a_request_x_accepts():
    account = PlatformAccountFactory(platform="x", platform_user_id="999", handle="brand")
    CampaignFactory(platform="x", hashtag="BuyKindleFireHD", product__name=NAMES["latin"])
    buyer = buyer_ready("alice")
    identity_link(
        cardholder=buyer.cardholder,
        platform="x",
        platform_user_id="1234567890123456789",
        handle=HANDLES["x"],
        now=timezone.now() - timedelta(days=3),
    )
    purchase = PostFactory(
        platform="x",
        account=account,
        author_id="1234567890123456789",
        author_handle=HANDLES["x"],
        hashtags=["BuyKindleFireHD"],
    )

    assert posts_decide(post_ids=[purchase.pk], now=timezone.now())["order_created"] == 1
    request = Reply.objects.get(kind="confirmation_request").text
    assert parse_tweet(request).valid
    code = Order.objects.get().confirmation_code
    assert f"#Confirm{code} within 15 minutes." in request
    assert request.startswith(f"@{HANDLES['x']} To buy Kindle Fire HD")
