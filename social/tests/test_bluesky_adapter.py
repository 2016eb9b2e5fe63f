"""The Bluesky adapter (issue 15): contract tests on payloads built from the lexicons in
``fixtures/bluesky`` and on its recorded thread, purchases end to end, handles that change,
the session refresh race, rate limits, idempotent replies and ``replay_posts``. No network:
``responses`` plays the Bluesky service."""

import base64
import io
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from social.credentials import account_credentials_set, credentials_decrypt
from social.hashtags import extract_hashtags
from social.models import FeedCursor, PlatformAccount, Post, PostKind, Reply, ReplyStatus
from social.platforms.base import DuplicateReply, RateLimited
from social.platforms.bluesky import (
    INDEX_DELAY,
    BlueskyAdapter,
    ReadProgress,
    record_key,
    reply_facets,
    reply_record,
    within_write_limits,
)
from social.platforms.bluesky_posts import inbound_from_items

FIXTURES = Path(__file__).parent / "fixtures" / "bluesky"
SERVICE = "https://bsky.social"
XRPC = f"{SERVICE}/xrpc"
BRAND_DID = "did:plc:brandbrandbrandbrandbran"
BRAND_HANDLE = "hashcart.bsky.social"
ALICE_DID = "did:plc:alicealicealicealicealic"
BOB_DID = "did:plc:bobbobbobbobbobbobbobbobb"


# --- Payloads built from the lexicons ----------------------------------------------------------
def lexicon(nsid: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "lexicons" / f"{nsid}.json").read_text())["defs"]


def conforms(value: dict[str, Any], nsid: str, definition: str = "main") -> dict[str, Any]:
    """``value``, after checking that it has every field the lexicon's object requires."""
    schema = lexicon(nsid)[definition]
    schema = schema.get("record", schema)
    missing = set(schema.get("required", [])) - set(value)
    assert not missing, f"{nsid}#{definition} requires {missing}"
    return value


def conforms_io(value: dict[str, Any], nsid: str, direction: str) -> dict[str, Any]:
    """``value``, after checking it has every field a method's input or output requires."""
    missing = set(lexicon(nsid)["main"][direction]["schema"]["required"]) - set(value)
    assert not missing, f"{nsid} {direction} requires {missing}"
    return value


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def tag_facet(text: str, tag: str) -> dict[str, Any]:
    """A tag facet over ``#tag`` in ``text``, at its UTF-8 byte offsets (as clients write it)."""
    start = text.index(f"#{tag}")
    byte_start = len(text[:start].encode())
    facet: dict[str, Any] = {
        "$type": "app.bsky.richtext.facet",
        "index": {"byteStart": byte_start, "byteEnd": byte_start + len(f"#{tag}".encode())},
        "features": [conforms({"$type": "app.bsky.richtext.facet#tag", "tag": tag}, *_TAG)],
    }
    conforms(facet["index"], "app.bsky.richtext.facet", "byteSlice")
    return conforms(facet, "app.bsky.richtext.facet")


_TAG = ("app.bsky.richtext.facet", "tag")


def mention_facet(text: str, handle: str, did: str) -> dict[str, Any]:
    start = len(text[: text.index(f"@{handle}")].encode())
    return {
        "$type": "app.bsky.richtext.facet",
        "index": {"byteStart": start, "byteEnd": start + len(f"@{handle}".encode())},
        "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
    }


def post_record(
    text: str,
    *,
    tags: tuple[str, ...] | None = None,
    reply: dict[str, Any] | None = None,
    embed: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """An ``app.bsky.feed.post`` record mentioning the brand, with a tag facet per hashtag
    (``tags``: those of the text by default; ``()``: no tag facet at all)."""
    facets = [mention_facet(text, BRAND_HANDLE, BRAND_DID)] if f"@{BRAND_HANDLE}" in text else []
    written = tags if tags is not None else tuple(w[1:] for w in text.split() if w[0] == "#")
    facets += [tag_facet(text, tag) for tag in written]
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": iso(at or timezone.now()),
    }
    if facets:
        record["facets"] = facets
    if reply:
        record["reply"] = conforms(reply, "app.bsky.feed.post", "replyRef")
    if embed:
        record["embed"] = embed
    return conforms(record, "app.bsky.feed.post")


def strong_ref(uri: str, cid: str) -> dict[str, str]:
    return conforms({"uri": uri, "cid": cid}, "com.atproto.repo.strongRef")


def author(did: str, handle: str) -> dict[str, Any]:
    return {"did": did, "handle": handle, "displayName": handle.split(".")[0]}


def post_view(
    rkey: str, did: str, handle: str, record: dict[str, Any], *, at: datetime | None = None
) -> dict[str, Any]:
    view = {
        "uri": f"at://{did}/app.bsky.feed.post/{rkey}",
        "cid": f"bafyrei{rkey}",
        "author": author(did, handle),
        "record": record,
        "indexedAt": iso(at or timezone.now()),
    }
    return conforms(view, "app.bsky.feed.defs", "postView")


def notification(
    view: dict[str, Any], *, reason: str = "mention", at: datetime | None = None
) -> dict[str, Any]:
    item = {
        "uri": view["uri"],
        "cid": view["cid"],
        "author": view["author"],
        "reason": reason,
        "record": view["record"],
        "isRead": False,
        "indexedAt": iso(at or timezone.now()),
    }
    return conforms(item, "app.bsky.notification.listNotifications", "notification")


def jwt(subject: str, *, expires: datetime, nonce: str = "") -> str:
    """A JWT with ``exp`` (the adapter reads the claim; the service verifies the signature)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    claims = {"sub": subject, "exp": int(expires.timestamp()), "jti": nonce}
    return f"{part({'alg': 'ES256K'})}.{part(claims)}.c2ln"


def session_body(access: str, refresh: str) -> dict[str, Any]:
    body = {"accessJwt": access, "refreshJwt": refresh, "handle": BRAND_HANDLE, "did": BRAND_DID}
    return conforms_io(body, "com.atproto.server.createSession", "output")


@pytest.fixture
def account(db):
    acct = PlatformAccount.objects.create(
        platform="bluesky", platform_user_id=BRAND_DID, handle=BRAND_HANDLE
    )
    account_credentials_set(
        account_id=acct.pk,
        credentials={
            "identifier": BRAND_HANDLE,
            "app_password": "abcd-efgh-ijkl-mnop",
            "access_jwt": jwt(BRAND_DID, expires=timezone.now() + timedelta(hours=2)),
            "refresh_jwt": "refresh-1",
        },
    )
    acct.refresh_from_db()
    return acct


def get_posts_from(views: list[dict[str, Any]]):
    """A ``getPosts`` callback answering the views asked for by ``uris``."""
    by_uri = {v["uri"]: v for v in views}

    def answer(request):
        uris = parse_qs(urlsplit(request.url).query).get("uris", [])
        return 200, {}, json.dumps({"posts": [by_uri[u] for u in uris if u in by_uri]})

    return answer


def created(request) -> tuple[int, dict, str]:
    body = json.loads(request.body)
    uri = f"at://{body['repo']}/{body['collection']}/{body['rkey']}"
    return 200, {}, json.dumps({"uri": uri, "cid": "bafyreireply"})


# --- The recorded thread --------------------------------------------------------------------
def test_the_recorded_thread_is_a_quote_keyed_on_the_authors_did():
    body = json.loads((FIXTURES / "thread_view_post_with_embed_media.json").read_text())
    (post,) = BlueskyAdapter.replay_posts(body, fetched_at=timezone.now())
    view = body["thread"]["post"]
    assert post.post_id == view["uri"]
    assert post.author_id == view["author"]["did"]
    assert post.author_handle == "test.marshal.dev"
    # An image with a quoted post (recordWithMedia) is a quote; its time is the AppView's.
    assert post.kind == PostKind.QUOTE
    assert post.created_at == datetime(2023, 9, 28, 12, 49, 36, 735000, tzinfo=UTC)


def test_the_recorded_record_is_a_post_whose_quote_hashtags_are_read_from_it():
    recorded = json.loads((FIXTURES / "post_record.json").read_text())
    quoted = {**recorded["value"], "text": "Selling out fast #BuyKindleFireHD"}
    record = post_record(
        "look at this",
        embed={
            "$type": "app.bsky.embed.record",
            "record": strong_ref(recorded["uri"], recorded["cid"]),
        },
    )
    view = post_view("3kquote00000a", BOB_DID, "bob.bsky.social", record)
    (post,) = inbound_from_items(
        [notification(view)], fetched_at=timezone.now(), quoted={recorded["uri"]: quoted}
    )
    assert (post.kind, post.hashtags, post.quoted_hashtags) == (
        PostKind.QUOTE,
        (),
        ("BuyKindleFireHD",),
    )


# --- Hashtags and facets ------------------------------------------------------------------------
def test_hashtags_come_from_tag_facets_at_utf8_byte_offsets_after_emoji_and_cyrillic():
    # Glued to a word, "#BuyKindleFireHD" is no hashtag to the text's reading: only the facet,
    # read at UTF-8 byte offsets, makes it one.
    text = f"Привет 👋🏽 @{BRAND_HANDLE} я хочу#BuyKindleFireHD"
    assert extract_hashtags(text) == []
    record = post_record(text, tags=("BuyKindleFireHD",))
    # The same facet with code-point offsets, as a careless client might write them.
    start = text.index("#BuyKindleFireHD")
    by_characters = {**record, "facets": [dict(record["facets"][-1])]}
    by_characters["facets"][0]["index"] = {"byteStart": start, "byteEnd": len(text)}
    posts = inbound_from_items(
        [
            post_view("3kfacet00000a", ALICE_DID, "alice.bsky.social", record),
            post_view("3kfacet00000b", ALICE_DID, "alice.bsky.social", by_characters),
        ],
        fetched_at=timezone.now(),
    )
    assert {p.post_id[-1]: p.hashtags for p in posts} == {"a": ("BuyKindleFireHD",), "b": ()}


def test_a_record_with_tag_facets_is_not_read_for_other_hashtags_in_its_text():
    record = post_record("#BuyKindleFireHD and #BuyEchoDot", tags=("BuyEchoDot",))
    (post,) = inbound_from_items(
        [post_view("3ktags000000a", ALICE_DID, "a.bsky.social", record)], fetched_at=timezone.now()
    )
    assert post.hashtags == ("BuyEchoDot",)


def test_a_record_without_tag_facets_has_its_text_read_outside_its_links():
    text = "see https://shop.example/#BuyEchoDot then #BuyKindleFireHD"
    link_start = len(text[: text.index("https")].encode())
    record = post_record(text, tags=())
    record["facets"] = [
        {
            "index": {"byteStart": link_start, "byteEnd": link_start + len(text.split()[1])},
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://shop.example/"}],
        }
    ]
    (post,) = inbound_from_items(
        [post_view("3ktext000000a", ALICE_DID, "a.bsky.social", record)], fetched_at=timezone.now()
    )
    assert post.hashtags == ("BuyKindleFireHD",)


def test_reply_facets_are_at_utf8_byte_offsets_after_emoji_and_non_latin_text():
    text = "@alice.bsky.social Kindle 📱 «Читалка» 日本語 for $99: reply #ConfirmAB12C"
    facets = [f.model_dump(by_alias=True) for f in reply_facets(text, author_did=ALICE_DID)]
    encoded = text.encode()
    mention, tag = facets
    assert encoded[mention["index"]["byteStart"] : mention["index"]["byteEnd"]] == (
        b"@alice.bsky.social"
    )
    assert mention["features"][0]["did"] == ALICE_DID
    assert encoded[tag["index"]["byteStart"] : tag["index"]["byteEnd"]] == b"#ConfirmAB12C"
    assert tag["features"][0]["tag"] == "ConfirmAB12C"
    assert tag["index"]["byteStart"] != text.index("#ConfirmAB12C")  # bytes, not characters


def test_a_long_handle_is_shown_cut_and_its_mention_still_links_the_did():
    handle = ("b" * 62 + ".") * 3 + "b" * 52 + ".bsky.social"  # 253 characters, the most
    text = f"@{handle} Thanks! Order #K7Q2M is confirmed. " + "é" * 150
    assert BlueskyAdapter.fits(text)  # 64 characters of the handle count, not 253
    parent = post_view("3kparent0000a", ALICE_DID, handle, post_record("#BuyX"))
    record = reply_record(text=text, parent=parent, now=timezone.now())
    mention = record["facets"][0]
    shown = record["text"].encode()[mention["index"]["byteStart"] : mention["index"]["byteEnd"]]
    assert shown.decode() == f"@{handle[:64]}…"
    assert mention["features"][0]["did"] == ALICE_DID
    assert record["text"].endswith("Order #K7Q2M is confirmed. " + "é" * 150)
    assert BlueskyAdapter.fits(f"@{handle[:20]} hi")


def test_a_reply_to_a_reply_keeps_the_threads_root():
    root = strong_ref(
        "at://did:plc:rootrootrootrootrootroot/app.bsky.feed.post/3kroot0000000", "bafyroot"
    )
    parent_record = post_record(
        f"@{BRAND_HANDLE} #BuyKindleFireHD", reply={"root": root, "parent": root}
    )
    parent = post_view("3kparent0000a", ALICE_DID, "alice.bsky.social", parent_record)
    record = reply_record(text="@alice.bsky.social Thanks", parent=parent, now=timezone.now())
    conforms(record, "app.bsky.feed.post")
    assert record["reply"]["root"] == {**root, "$type": "com.atproto.repo.strongRef"}
    assert record["reply"]["parent"]["uri"] == parent["uri"]
    assert record["reply"]["parent"]["cid"] == parent["cid"]


def test_the_length_rule_counts_graphemes_up_to_300():
    family = "👨‍👩‍👧‍👦"  # one grapheme of seven code points, 25 bytes
    assert BlueskyAdapter.fits(family * 120)  # 120 graphemes, 3,000 bytes
    assert not BlueskyAdapter.fits(family * 121)  # too many bytes
    assert BlueskyAdapter.fits("é" * 300)
    assert not BlueskyAdapter.fits("a" * 301)


def test_record_keys_are_valid_tids_made_from_the_idempotency_key():
    tid_chars = set("234567abcdefghijklmnopqrstuvwxyz")
    key = record_key("reply-42")
    assert key == record_key("reply-42") != record_key("reply-43")
    assert len(key) == 13
    assert set(key) <= tid_chars
    assert key[0] in "234567abcdefghij"


def test_the_default_reply_budget_is_within_blueskys_write_points():
    account = PlatformAccount(platform="bluesky")
    assert within_write_limits(account.reply_budget, account.reply_budget_seconds)
    assert within_write_limits(1000, 10_000)
    assert not within_write_limits(2000, 3600)  # 6,000 points in an hour


# --- Reading the notifications -------------------------------------------------------------------
@responses.activate
def test_notifications_are_read_with_their_reasons_and_quoted_posts_and_committed(account):
    now = timezone.now()
    quoted = post_view(
        "3kbought0000a", BOB_DID, "bob.bsky.social", post_record("#BuyKindleFireHD"), at=now
    )
    quote_record = post_record(
        f"@{BRAND_HANDLE} me too?",
        embed={
            "$type": "app.bsky.embed.record",
            "record": strong_ref(quoted["uri"], quoted["cid"]),
        },
    )
    quote = post_view("3kquote00000a", ALICE_DID, "alice.bsky.social", quote_record, at=now)
    mention = post_view(
        "3kmention000a",
        ALICE_DID,
        "alice.bsky.social",
        post_record(f"@{BRAND_HANDLE} #BuyKindleFireHD"),
        at=now - timedelta(seconds=5),
    )
    like = {**notification(mention, at=now), "reason": "like", "uri": "at://x/app.bsky.feed.like/1"}
    page = {
        "notifications": [notification(quote, at=now), notification(mention, at=now), like],
        "cursor": "page-2",
    }
    responses.get(f"{XRPC}/app.bsky.notification.listNotifications", json=page)
    responses.get(f"{XRPC}/app.bsky.notification.listNotifications", json={"notifications": []})
    responses.add_callback(
        responses.GET, f"{XRPC}/app.bsky.feed.getPosts", callback=get_posts_from([quoted])
    )
    from social.services import feed_poll

    result = feed_poll(account_id=account.pk, now=now)
    assert len(result.stored) == 2
    stored = {p.post_id: p for p in Post.objects.filter(platform="bluesky")}
    assert stored[mention["uri"]].hashtags == ["BuyKindleFireHD"]
    assert stored[mention["uri"]].author_id == ALICE_DID
    assert (stored[quote["uri"]].kind, stored[quote["uri"]].quoted_hashtags) == (
        PostKind.QUOTE,
        ["BuyKindleFireHD"],
    )
    first = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert first["reasons"] == ["mention", "reply"]
    assert first["limit"] == ["100"]
    assert responses.calls[0].request.headers["Authorization"].startswith("Bearer ey")
    assert "cursor" not in first
    assert parse_qs(urlsplit(responses.calls[-1].request.url).query)["cursor"] == ["page-2"]
    cursor = FeedCursor.objects.get(account=account)
    progress = ReadProgress.decode(cursor.cursor)
    assert datetime.fromisoformat(progress.since) == now  # the newest indexedAt read
    assert cursor.high_water_mark == now - INDEX_DELAY
    assert datetime.fromisoformat(progress.mark) == cursor.high_water_mark


@responses.activate
def test_the_next_read_stops_at_the_post_last_read(account):
    now = timezone.now()
    old = post_view("3kold0000000a", ALICE_DID, "a.bsky.social", post_record("old"), at=now)
    new = post_view("3knew0000000a", ALICE_DID, "a.bsky.social", post_record("new"))
    later = now + timedelta(minutes=1)
    page = {
        "notifications": [notification(new, at=later), notification(old, at=now)],
        "cursor": "older",
    }
    responses.get(f"{XRPC}/app.bsky.notification.listNotifications", json=page)
    result = BlueskyAdapter().fetch_mentions(
        account=account, cursor=now.isoformat(), now=later, limit=500
    )
    assert len(responses.calls) == 1  # the page reached the cursor: no older page is read
    assert datetime.fromisoformat(ReadProgress.decode(result.cursor).since) == later


@responses.activate
def test_a_backlog_is_read_over_several_reads_without_moving_the_mark(account):
    now = timezone.now()
    views = [
        post_view(f"3kbacklog{n:04d}", ALICE_DID, "a.bsky.social", post_record(f"n{n}"))
        for n in range(3)
    ]
    url = f"{XRPC}/app.bsky.notification.listNotifications"
    for n, view in enumerate(views):
        responses.get(
            url,
            json={
                "notifications": [notification(view, at=now - timedelta(seconds=n))],
                **({"cursor": f"p{n + 1}"} if n < 2 else {}),
            },
        )
    adapter = BlueskyAdapter()
    first = adapter.fetch_mentions(account=account, cursor="", now=now, limit=100)
    assert (first.more, first.high_water_mark) == (True, None)
    second = adapter.fetch_mentions(account=account, cursor=first.cursor, now=now, limit=100)
    third = adapter.fetch_mentions(account=account, cursor=second.cursor, now=now, limit=100)
    assert third.more is False
    assert third.high_water_mark is not None
    assert parse_qs(urlsplit(responses.calls[2].request.url).query)["cursor"] == ["p2"]
    assert [len(r.posts) for r in (first, second, third)] == [1, 1, 1]


@responses.activate
def test_the_search_feed_asks_for_each_hashtag_since_the_last_read(account):
    now = timezone.now()
    view = post_view("3ksearch0000a", ALICE_DID, "a.bsky.social", post_record("#BuyKindleFireHD"))
    responses.get(f"{XRPC}/app.bsky.feed.searchPosts", json={"posts": [view]})
    result = BlueskyAdapter().fetch_search(
        account=account, cursor=now.isoformat(), now=now, limit=100, hashtags=("BuyKindleFireHD",)
    )
    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query["tag"] == ["BuyKindleFireHD"]
    assert query["sort"] == ["latest"]
    # ``since`` filters on when a post says it was made; one indexed a few seconds after a
    # newer one was read is still asked for (the inbox ignores the posts read twice).
    assert datetime.fromisoformat(query["since"][0]) == now - INDEX_DELAY
    assert [p.hashtags for p in result.posts] == [("BuyKindleFireHD",)]


@responses.activate
def test_an_empty_page_that_still_has_a_cursor_is_read_past(account):
    # listNotifications filtered by ``reasons`` may answer a page with no notification at all
    # and a cursor: there are more, further down.
    now = timezone.now()
    mention = post_view("3kbelow00000a", ALICE_DID, "a.bsky.social", post_record("#BuyX"))
    url = f"{XRPC}/app.bsky.notification.listNotifications"
    responses.get(url, json={"notifications": [], "cursor": "p1"})
    responses.get(url, json={"notifications": [notification(mention, at=now)]})
    result = BlueskyAdapter().fetch_mentions(
        account=account, cursor=(now - timedelta(hours=1)).isoformat(), now=now, limit=500
    )
    assert [p.post_id for p in result.posts] == [mention["uri"]]
    assert parse_qs(urlsplit(responses.calls[1].request.url).query)["cursor"] == ["p1"]
    assert result.more is False


@responses.activate
def test_a_cursor_the_service_repeats_ends_the_read(account):
    now = timezone.now()
    view = post_view("3krepeat0000a", ALICE_DID, "a.bsky.social", post_record("hi"))
    url = f"{XRPC}/app.bsky.notification.listNotifications"
    responses.get(url, json={"notifications": [notification(view, at=now)], "cursor": "same"})
    adapter = BlueskyAdapter()
    result = adapter.fetch_mentions(account=account, cursor="", now=now, limit=100_000)
    assert len(responses.calls) == 2  # the first page, and the one its cursor names
    assert (result.more, result.high_water_mark) == (False, now - INDEX_DELAY)


@responses.activate
def test_a_service_that_cycles_its_cursors_ends_the_round_after_its_page_cap(
    account, monkeypatch, caplog
):
    from social.platforms import bluesky

    monkeypatch.setattr(bluesky, "MAX_ROUND_PAGES", 3)
    now = timezone.now()
    view = post_view("3kcycle00000a", ALICE_DID, "a.bsky.social", post_record("hi"))
    url = f"{XRPC}/app.bsky.notification.listNotifications"
    for cursor in ("a", "b", "a", "b", "a"):
        responses.get(url, json={"notifications": [notification(view, at=now)], "cursor": cursor})
    adapter = BlueskyAdapter()
    first = adapter.fetch_mentions(account=account, cursor="", now=now, limit=200)  # 2 pages
    second = adapter.fetch_mentions(account=account, cursor=first.cursor, now=now, limit=200)
    assert (first.more, second.more) == (True, False)
    assert len(responses.calls) == 3
    assert second.high_water_mark == now - INDEX_DELAY
    assert "pages in one round" in caplog.text


@responses.activate
def test_a_backdated_post_read_after_the_campaign_ended_is_decided_closed(account):
    from catalog.tests.factories import CampaignFactory
    from orders.pipeline import stage_decide, stage_poll

    now = timezone.now()
    CampaignFactory(
        platform="bluesky",
        hashtag="BuyKindleFireHD",
        starts_at=now - timedelta(days=1),
        ends_at=now - timedelta(minutes=10),
    )
    _bluesky_buyer("alice.bsky.social", ALICE_DID)
    url = f"{XRPC}/app.bsky.notification.listNotifications"
    # Read after the end, nothing new; then a post whose client wrote a time in the window: the
    # notification's ``indexedAt`` is the earlier of that and when it was indexed.
    responses.get(url, json={"notifications": []})
    stage_poll(now=now - timedelta(minutes=2))
    hour_ago = now - timedelta(hours=1)
    backdated = post_view(
        "3kbackdate00a",
        ALICE_DID,
        "alice.bsky.social",
        post_record(f"@{BRAND_HANDLE} #BuyKindleFireHD", at=hour_ago),
        at=hour_ago,
    )
    responses.get(url, json={"notifications": [notification(backdated, at=hour_ago)]})
    stage_poll(now=now)
    assert stage_decide(now=now) == {"campaign_closed": 1}
    stored = Post.objects.get(post_id=backdated["uri"])
    assert stored.posted_at >= now - timedelta(minutes=2) - INDEX_DELAY


@pytest.mark.parametrize(
    ("header", "hold"),
    [
        ("99999999999999999999", timedelta(hours=1)),  # would overflow a datetime
        ("4102444800", timedelta(hours=1)),  # the year 2100: at most an hour
        ("\u00b2", timedelta(minutes=5)),  # "²" is a digit to str.isdigit, not to int()
        ("soon", timedelta(minutes=5)),
        ("", timedelta(minutes=5)),
        (None, timedelta(minutes=5)),
        ("1", timedelta(seconds=1)),  # long past: try again in a second
    ],
)
@responses.activate
def test_a_bad_or_extreme_ratelimit_reset_holds_between_a_second_and_an_hour(account, header, hold):
    from social.services import ReplyDraft, replies_queue, replies_send_due
    from social.tests.factories import PostFactory

    parent = post_view("3kparent0000a", ALICE_DID, "alice.bsky.social", post_record("#BuyX"))
    post = PostFactory(account=account, platform="bluesky", post_id=parent["uri"])
    replies_queue(
        drafts=[ReplyDraft(in_reply_to=post, kind="k", text="@alice.bsky.social hi", priority=0)]
    )
    responses.add_callback(
        responses.GET, f"{XRPC}/app.bsky.feed.getPosts", callback=get_posts_from([parent])
    )
    responses.post(
        f"{XRPC}/com.atproto.repo.createRecord",
        status=429,
        headers={} if header is None else {"ratelimit-reset": header},
        json={"error": "RateLimitExceeded"},
    )
    now = timezone.now()
    result = replies_send_due(account_id=account.pk, now=now)
    reply = Reply.objects.get()
    assert (reply.status, reply.attempts) == (ReplyStatus.QUEUED, 0)
    assert result.wait_until is not None
    assert abs(result.wait_until - (now + hold)) < timedelta(seconds=5)


@pytest.mark.parametrize("failure", [429, 500, 400])
@responses.activate
def test_a_quoted_post_that_cannot_be_looked_up_leaves_the_quote_unknown_and_the_page_read(
    account, failure
):
    now = timezone.now()
    quoted_uri = f"at://{BOB_DID}/app.bsky.feed.post/3kbought0000a"
    quote = post_view(
        "3kquote00000a",
        ALICE_DID,
        "alice.bsky.social",
        post_record(
            f"@{BRAND_HANDLE} me too? #BuyKindleFireHD",
            embed={"$type": "app.bsky.embed.record", "record": strong_ref(quoted_uri, "bafyq")},
        ),
    )
    mention = post_view("3kmention000a", BOB_DID, "bob.bsky.social", post_record("#BuyEchoDot"))
    responses.get(
        f"{XRPC}/app.bsky.notification.listNotifications",
        json={"notifications": [notification(quote, at=now), notification(mention, at=now)]},
    )
    responses.get(
        f"{XRPC}/app.bsky.feed.getPosts",
        status=failure,
        headers={"ratelimit-reset": str(int((now + timedelta(minutes=9)).timestamp()))},
        json={"error": "RateLimitExceeded" if failure == 429 else "InternalServerError"},
    )
    from social.services import feed_poll

    result = feed_poll(account_id=account.pk, now=now)
    assert (result.error, result.waiting_until) == ("", None)
    stored = {p.post_id: p for p in Post.objects.filter(platform="bluesky")}
    assert set(stored) == {quote["uri"], mention["uri"]}
    # The quoter's own hashtag is read once; what it quotes is unknown, so nothing in it counts.
    assert (stored[quote["uri"]].kind, stored[quote["uri"]].hashtags) == (
        PostKind.QUOTE,
        ["BuyKindleFireHD"],
    )
    assert stored[quote["uri"]].quoted_hashtags == []
    assert FeedCursor.objects.get(account=account).high_water_mark is not None


def test_an_item_that_cannot_be_read_is_malformed_and_the_rest_goes_on():
    good = post_view("3kgood000000a", ALICE_DID, "a.bsky.social", post_record("#BuyX"))
    items = [{"uri": "not-a-uri", "author": {"did": ALICE_DID}}, "junk", good]
    posts = inbound_from_items(items, fetched_at=timezone.now())
    assert sorted(bool(p.malformed) for p in posts) == [False, True, True]


def _bad(change):
    """A post view of Alice's made malformed by ``change(view)``."""

    def make() -> dict[str, Any]:
        view = post_view("3kbad0000000a", ALICE_DID, "alice.bsky.social", post_record("#BuyX"))
        change(view)
        return view

    return make


def _set(path: str, value: Any):
    def change(view: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = view
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[last] = value

    return change


def _repost(by: str, uri: str) -> dict[str, Any]:
    post = post_view("3kbought0000a", BOB_DID, "bob.bsky.social", post_record("#BuyX"))
    reason = {
        "$type": "app.bsky.feed.defs#reasonRepost",
        "by": author(by, "someone.bsky.social"),
        "uri": uri,
        "indexedAt": iso(timezone.now()),
    }
    return {"post": post, "reason": reason}


MALFORMED = {
    # A record the lexicon would refuse (finding 3).
    "facets not a list": _bad(_set("record.facets", 5)),
    "features not a list": _bad(_set("record.facets.0.features", 7)),
    "an index not an object": _bad(_set("record.facets.0.index", "0-5")),
    "a facet not an object": _bad(_set("record.facets", ["#BuyX"])),
    "text not a string": _bad(_set("record.text", ["#BuyX"])),
    "an embed not an object": _bad(_set("record.embed", 3)),
    "an author not an object": _bad(_set("author", "alice")),
    # Identity and type (finding 7).
    "a follow's uri": _bad(_set("uri", f"at://{ALICE_DID}/app.bsky.graph.follow/3kbad0000000a")),
    "a record of another type": _bad(_set("record.$type", "app.bsky.feed.like")),
    "a record without a type": _bad(lambda view: view["record"].pop("$type")),
    "Bob's uri with Alice as author": _bad(
        _set("uri", f"at://{BOB_DID}/app.bsky.feed.post/3kbad0000000a")
    ),
    "a repost whose uri is someone else's": lambda: _repost(
        ALICE_DID, f"at://{BOB_DID}/app.bsky.feed.repost/3krepost000a"
    ),
    "a repost whose uri is no repost": lambda: _repost(
        ALICE_DID, f"at://{ALICE_DID}/app.bsky.feed.post/3krepost000a"
    ),
}


@pytest.mark.parametrize("make", MALFORMED.values(), ids=MALFORMED.keys())
def test_an_item_of_a_bad_shape_or_identity_is_malformed_and_the_rest_goes_on(make):
    good = post_view("3kgood000000a", BOB_DID, "bob.bsky.social", post_record("#BuyEchoDot"))
    posts = {p.post_id: p for p in inbound_from_items([make(), good], fetched_at=timezone.now())}
    assert posts.pop(good["uri"]).hashtags == ("BuyEchoDot",)
    (bad,) = posts.values()
    assert bad.malformed
    assert bad.hashtags == ()


@responses.activate
def test_a_page_of_malformed_records_is_read_and_committed_with_the_rest(account):
    from social.services import feed_poll

    now = timezone.now()
    good = post_view("3kgood000000a", BOB_DID, "bob.bsky.social", post_record("#BuyEchoDot"))
    views = [view for make in MALFORMED.values() if "uri" in (view := make())]
    items = [notification(view, at=now) for view in views] + [notification(good, at=now)]
    responses.get(f"{XRPC}/app.bsky.notification.listNotifications", json={"notifications": items})
    result = feed_poll(account_id=account.pk, now=now)
    assert result.error == ""
    assert Post.objects.get(post_id=good["uri"]).hashtags == ["BuyEchoDot"]
    assert Post.objects.filter(outcome="malformed").count() >= 1
    assert FeedCursor.objects.get(account=account).high_water_mark is not None


TEXT = "Nice one #BuyEchoDot"
FAMILY = "👨‍👩‍👧‍👦"  # one grapheme, 25 bytes
BAD_TAG_FACETS = {
    "a tag not in the text": ("", {"byteStart": 0, "byteEnd": 4}, "BuyX"),
    "a range past the end": ("", {"byteStart": 9, "byteEnd": 400}, "BuyEchoDot"),
    "a negative start": ("", {"byteStart": -3, "byteEnd": 4}, "BuyX"),
    "an empty range": ("", {"byteStart": 9, "byteEnd": 9}, "BuyX"),
    "a range backwards": ("", {"byteStart": 20, "byteEnd": 9}, "BuyEchoDot"),
    "a range inside a character": (" #Éa", {"byteStart": 21, "byteEnd": 23}, "É"),
    "a tag of 65 graphemes": (" #" + "B" * 65, {"byteStart": 21, "byteEnd": 87}, "B" * 65),
    "a tag of 650 bytes": (" #" + FAMILY * 26, {"byteStart": 21, "byteEnd": 672}, FAMILY * 26),
    "a tag of 100,000 characters": (
        " #" + "B" * 100_000,
        {"byteStart": 21, "byteEnd": 100_022},
        "B" * 100_000,
    ),
}


@pytest.mark.parametrize(
    ("extra", "index", "tag"), BAD_TAG_FACETS.values(), ids=BAD_TAG_FACETS.keys()
)
def test_a_tag_facet_that_does_not_cover_its_tag_in_the_text_is_not_believed(extra, index, tag):
    record = post_record(TEXT)  # a true facet over #BuyEchoDot
    record["text"] += extra
    record["facets"].append(
        {"index": index, "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}]}
    )
    good = post_view("3kgood000000a", BOB_DID, "bob.bsky.social", post_record("#BuyKindleFireHD"))
    bad = post_view("3kbadtag0000a", ALICE_DID, "alice.bsky.social", record)
    posts = {p.post_id: p for p in inbound_from_items([bad, good], fetched_at=timezone.now())}
    assert posts[good["uri"]].hashtags == ("BuyKindleFireHD",)
    assert posts[bad["uri"]].hashtags == ("BuyEchoDot",)


def test_tag_facets_of_long_tags_within_the_lexicons_limits_are_believed():
    tag = "Б" * 64  # 64 graphemes, 128 bytes
    text = f"#{tag} and #BuyEchoDot"
    record = post_record(text)
    (post,) = inbound_from_items(
        [post_view("3klong000000a", ALICE_DID, "a.bsky.social", record)], fetched_at=timezone.now()
    )
    assert post.hashtags == (tag, "BuyEchoDot")


def test_a_tag_facet_in_another_case_than_its_text_is_read_as_the_facet_says():
    record = post_record("#buykindlefirehd", tags=())
    record["facets"] = [
        {
            "index": {"byteStart": 0, "byteEnd": 16},
            "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "BuyKindleFireHD"}],
        }
    ]
    (post,) = inbound_from_items(
        [post_view("3kcase000000a", ALICE_DID, "a.bsky.social", record)], fetched_at=timezone.now()
    )
    assert post.hashtags == ("BuyKindleFireHD",)


# --- A purchase on Bluesky, end to end ---------------------------------------------------------
def _bluesky_buyer(handle: str, did: str):
    from accounts.models import SocialIdentity
    from tests.shop import buyer_ready

    buyer = buyer_ready(handle.split(".")[0])
    SocialIdentity.objects.filter(pk=buyer.identity.pk).update(
        platform="bluesky", platform_user_id=did, handle=handle
    )
    return buyer


@responses.activate
def test_a_mention_with_a_purchase_hashtag_is_read_decided_and_answered_in_its_thread(account):
    from catalog.tests.factories import CampaignFactory
    from orders.models import Order, OrderStatus
    from orders.pipeline import stage_decide, stage_payments, stage_poll, stage_send

    CampaignFactory(
        platform="bluesky", hashtag="BuyKindleFireHD", product__name="Kindle 📱 «Читалка»"
    )
    _bluesky_buyer("alice.bsky.social", ALICE_DID)
    now = timezone.now()
    root = post_view("3kthread0000a", BRAND_DID, BRAND_HANDLE, post_record("New: Kindle!"))
    text = f"Привет 👋🏽 @{BRAND_HANDLE} #BuyKindleFireHD"
    record = post_record(
        text,
        reply={
            "root": strong_ref(root["uri"], root["cid"]),
            "parent": strong_ref(root["uri"], root["cid"]),
        },
    )
    purchase = post_view("3kpurchase00a", ALICE_DID, "alice.bsky.social", record)
    responses.get(
        f"{XRPC}/app.bsky.notification.listNotifications",
        json={"notifications": [notification(purchase, reason="reply", at=now)]},
    )
    responses.add_callback(
        responses.GET, f"{XRPC}/app.bsky.feed.getPosts", callback=get_posts_from([purchase])
    )
    responses.add_callback(
        responses.POST, f"{XRPC}/com.atproto.repo.createRecord", callback=created
    )
    stage_poll(now=now)
    stage_decide(now=now)
    stage_send(now=now)

    order = Order.objects.get()
    assert (order.platform, order.author_handle) == ("bluesky", "alice.bsky.social")
    request = json.loads(responses.calls[-1].request.body)
    conforms_io(request, "com.atproto.repo.createRecord", "input")
    assert (request["repo"], request["collection"]) == (BRAND_DID, "app.bsky.feed.post")
    assert request["rkey"] == record_key(f"reply-{Reply.objects.get().pk}")
    reply = conforms(request["record"], "app.bsky.feed.post")
    assert reply["reply"]["parent"]["uri"] == purchase["uri"]
    assert reply["reply"]["parent"]["cid"] == purchase["cid"]
    assert reply["reply"]["root"]["uri"] == root["uri"]  # the thread's root, not the post
    assert reply["reply"]["root"]["cid"] == root["cid"]
    encoded = reply["text"].encode()
    spans = {
        encoded[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode(): f["features"][0]
        for f in reply["facets"]
    }
    assert spans["@alice.bsky.social"] == {
        "$type": "app.bsky.richtext.facet#mention",
        "did": ALICE_DID,
    }
    confirm = f"#Confirm{order.confirmation_code}"
    assert spans[confirm]["tag"] == confirm[1:]
    assert "Читалка" in reply["text"]  # non-Latin text and emoji before the hashtag
    sent = Reply.objects.get()
    assert (sent.status, sent.platform_reply_id) == (
        ReplyStatus.SENT,
        f"at://{BRAND_DID}/app.bsky.feed.post/{request['rkey']}",
    )

    # Alice confirms by replying in the thread (a "reply" notification) and is charged.
    ours = {
        **post_view(request["rkey"], BRAND_DID, BRAND_HANDLE, reply),
        "uri": sent.platform_reply_id,
    }
    confirmation = post_view(
        "3kconfirm000a",
        ALICE_DID,
        "alice.bsky.social",
        post_record(
            f"Да 👍 {confirm}",
            reply={"root": reply["reply"]["root"], "parent": strong_ref(ours["uri"], ours["cid"])},
        ),
    )
    later = timezone.now()
    responses.get(
        f"{XRPC}/app.bsky.notification.listNotifications",
        json={"notifications": [notification(confirmation, reason="reply", at=later)]},
    )
    stage_poll(now=later)
    stage_decide(now=later)
    stage_payments(now=later)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert Post.objects.get(post_id=confirmation["uri"]).kind == PostKind.REPLY


@responses.activate
def test_an_author_who_changed_handle_still_buys_on_their_did(account):
    from catalog.tests.factories import CampaignFactory
    from orders.models import Order
    from orders.pipeline import stage_decide, stage_poll

    CampaignFactory(platform="bluesky", hashtag="BuyKindleFireHD")
    _bluesky_buyer("alice.bsky.social", ALICE_DID)
    stranger = post_view(
        "3kstranger00a",
        BOB_DID,
        "alice.bsky.social",  # Alice's old handle, taken since by someone else
        post_record(f"@{BRAND_HANDLE} #BuyKindleFireHD"),
    )
    renamed = post_view(
        "3krenamed000a",
        ALICE_DID,
        "alice.example.com",
        post_record(f"@{BRAND_HANDLE} #BuyKindleFireHD"),
    )
    responses.get(
        f"{XRPC}/app.bsky.notification.listNotifications",
        json={"notifications": [notification(renamed), notification(stranger)]},
    )
    now = timezone.now()
    stage_poll(now=now)
    outcomes = stage_decide(now=now)
    order = Order.objects.get()
    assert order.author_handle == "alice.example.com"
    assert Post.objects.get(post_id=stranger["uri"]).outcome == "not_linked"
    assert outcomes["order_created"] == 1


@responses.activate
def test_a_repost_and_a_quote_of_someone_elses_purchase_post_are_ignored(account):
    from catalog.tests.factories import CampaignFactory
    from orders.pipeline import stage_decide, stage_poll

    CampaignFactory(platform="bluesky", hashtag="BuyKindleFireHD")
    _bluesky_buyer("alice.bsky.social", ALICE_DID)
    bought = post_view(
        "3kbobbuys000a",
        BOB_DID,
        "bob.bsky.social",
        post_record(f"@{BRAND_HANDLE} #BuyKindleFireHD"),
    )
    quote = post_view(
        "3kaliceqt000a",
        ALICE_DID,
        "alice.bsky.social",
        post_record(
            f"@{BRAND_HANDLE} look",
            embed={
                "$type": "app.bsky.embed.record",
                "record": strong_ref(bought["uri"], bought["cid"]),
            },
        ),
    )
    retweet = post_view(
        "3kalicert000a",
        ALICE_DID,
        "alice.bsky.social",
        post_record(f"RT @bob.bsky.social: @{BRAND_HANDLE} #BuyKindleFireHD"),
    )
    responses.get(
        f"{XRPC}/app.bsky.notification.listNotifications",
        json={"notifications": [notification(quote), notification(retweet)]},
    )
    responses.add_callback(
        responses.GET, f"{XRPC}/app.bsky.feed.getPosts", callback=get_posts_from([bought])
    )
    now = timezone.now()
    stage_poll(now=now)
    outcomes = stage_decide(now=now)
    assert outcomes == {"ignored_repost": 2}
    # A feed's repost of the purchase is the reposter's, and never stands for the purchase.
    repost = {
        "post": bought,
        "reason": {
            "$type": "app.bsky.feed.defs#reasonRepost",
            "by": author(ALICE_DID, "alice.bsky.social"),
            "uri": f"at://{ALICE_DID}/app.bsky.feed.repost/3krepost000a",
            "indexedAt": iso(now),
        },
    }
    conforms(repost["reason"], "app.bsky.feed.defs", "reasonRepost")
    (post,) = inbound_from_items([repost], fetched_at=now)
    assert (post.kind, post.hashtags, post.author_id) == (PostKind.REPOST, (), ALICE_DID)
    assert post.post_id != bought["uri"]


@responses.activate
def test_a_link_code_posted_on_bluesky_links_the_did(account):
    from accounts.models import SocialIdentity
    from accounts.services import cardholder_upsert, link_code_issue
    from orders.pipeline import stage_decide, stage_poll

    cardholder = cardholder_upsert(email="carol@example.com", password="pw-carol")
    code = link_code_issue(cardholder=cardholder, platform="bluesky", now=timezone.now())
    view = post_view(
        "3klink000000a",
        "did:plc:carolcarolcarolcarolcaro",
        "carol.bsky.social",
        post_record(f"@{BRAND_HANDLE} #Link{code.code}"),
    )
    responses.get(
        f"{XRPC}/app.bsky.notification.listNotifications",
        json={"notifications": [notification(view)]},
    )
    now = timezone.now()
    stage_poll(now=now)
    stage_decide(now=now)
    identity = SocialIdentity.objects.get(cardholder=cardholder)
    assert (identity.platform, identity.platform_user_id, identity.handle) == (
        "bluesky",
        "did:plc:carolcarolcarolcarolcaro",
        "carol.bsky.social",
    )


# --- Idempotent replies ---------------------------------------------------------------------
@responses.activate
def test_a_retry_after_a_lost_answer_is_refused_as_duplicate_and_found_by_its_key(account):
    from social.services import ReplyDraft, replies_queue, replies_send_due
    from social.tests.factories import PostFactory

    parent = post_view("3kparent0000a", ALICE_DID, "alice.bsky.social", post_record("#BuyX"))
    post = PostFactory(account=account, platform="bluesky", post_id=parent["uri"])
    replies_queue(
        drafts=[ReplyDraft(in_reply_to=post, kind="k", text="@alice.bsky.social hi", priority=0)]
    )
    reply = Reply.objects.get()
    rkey = record_key(f"reply-{reply.pk}")
    posted_at = timezone.now() - timedelta(minutes=1)
    stored = {
        "uri": f"at://{BRAND_DID}/app.bsky.feed.post/{rkey}",
        "cid": "bafyreireply",
        "value": reply_record(text=reply.text, parent=parent, now=posted_at),
    }
    responses.add_callback(
        responses.GET, f"{XRPC}/app.bsky.feed.getPosts", callback=get_posts_from([parent])
    )
    # The first attempt was posted; its retry at the same key fails as PDSes fail it today.
    responses.post(
        f"{XRPC}/com.atproto.repo.createRecord",
        status=500,
        json={"error": "InternalServerError", "message": "Internal Server Error"},
    )
    responses.get(f"{XRPC}/com.atproto.repo.getRecord", json=stored)
    with pytest.raises(DuplicateReply):
        BlueskyAdapter().send_reply(
            account=account,
            in_reply_to_post_id=parent["uri"],
            text=reply.text,
            idempotency_key=f"reply-{reply.pk}",
        )
    result = replies_send_due(account_id=account.pk, now=timezone.now())
    reply.refresh_from_db()
    assert result.sent
    assert reply.status == ReplyStatus.SENT
    assert reply.platform_reply_id == stored["uri"]
    assert abs(reply.sent_at - posted_at) < timedelta(milliseconds=1)
    query = parse_qs(urlsplit(responses.calls[-1].request.url).query)
    assert query == {"repo": [BRAND_DID], "collection": ["app.bsky.feed.post"], "rkey": [rkey]}


# --- Rate limits --------------------------------------------------------------------------------
@responses.activate
def test_a_429_with_ratelimit_reset_holds_replies_until_then_without_an_attempt(account):
    from social.services import ReplyDraft, replies_queue, replies_send_due
    from social.tests.factories import PostFactory

    parent = post_view("3kparent0000a", ALICE_DID, "alice.bsky.social", post_record("#BuyX"))
    post = PostFactory(account=account, platform="bluesky", post_id=parent["uri"])
    replies_queue(
        drafts=[ReplyDraft(in_reply_to=post, kind="k", text="@alice.bsky.social hi", priority=0)]
    )
    now = timezone.now()
    reset = int((now + timedelta(minutes=10)).timestamp())
    responses.add_callback(
        responses.GET, f"{XRPC}/app.bsky.feed.getPosts", callback=get_posts_from([parent])
    )
    create = responses.post(
        f"{XRPC}/com.atproto.repo.createRecord",
        status=429,
        headers={
            "ratelimit-limit": "5000",
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(reset),
        },
        json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
    )
    result = replies_send_due(account_id=account.pk, now=now)
    reply = Reply.objects.get()
    reset_at = datetime.fromtimestamp(reset, tz=UTC)
    assert result.wait_until == reset_at
    assert (reply.status, reply.attempts, reply.next_attempt_at) == (
        ReplyStatus.QUEUED,
        0,
        reset_at,
    )
    # Before the reset nothing is sent, not even asked: the hold is in the cache every worker sees.
    with pytest.raises(RateLimited):
        BlueskyAdapter().send_reply(
            account=account, in_reply_to_post_id=parent["uri"], text="x", idempotency_key="k"
        )
    assert create.call_count == 1
    assert replies_send_due(account_id=account.pk, now=now + timedelta(minutes=1)).sent == []
    assert create.call_count == 1


@responses.activate
def test_a_429_on_the_notifications_holds_the_feed_until_its_reset(account):
    from social.services import feed_poll

    now = timezone.now()
    reset = int((now + timedelta(minutes=3)).timestamp())
    responses.get(
        f"{XRPC}/app.bsky.notification.listNotifications",
        status=429,
        headers={"ratelimit-reset": str(reset)},
        json={"error": "RateLimitExceeded"},
    )
    result = feed_poll(account_id=account.pk, now=now)
    assert result.waiting_until == datetime.fromtimestamp(reset, tz=UTC)
    assert FeedCursor.objects.get(account=account).lease_until == result.waiting_until


# --- Sessions -----------------------------------------------------------------------------------
@responses.activate
def test_a_429_to_the_login_holds_every_call_of_the_account_until_its_reset(account):
    account_credentials_set(
        account_id=account.pk, credentials={"identifier": BRAND_HANDLE, "app_password": "p"}
    )
    account.refresh_from_db()
    reset = int((timezone.now() + timedelta(minutes=30)).timestamp())
    login = responses.post(
        f"{XRPC}/com.atproto.server.createSession",
        status=429,
        headers={"ratelimit-reset": str(reset)},
        json={"error": "RateLimitExceeded"},
    )
    adapter = BlueskyAdapter()
    for _ in range(2):
        with pytest.raises(RateLimited) as raised:
            adapter.fetch_mentions(account=account, cursor="", now=timezone.now(), limit=10)
        assert raised.value.reset_at == datetime.fromtimestamp(reset, tz=UTC)
    assert login.call_count == 1  # the second call waited without asking
    assert len(responses.calls) == 1


@responses.activate
def test_an_account_without_a_session_logs_in_with_its_app_password(account):
    account_credentials_set(
        account_id=account.pk,
        credentials={"identifier": BRAND_HANDLE, "app_password": "abcd-efgh-ijkl-mnop"},
    )
    account.refresh_from_db()
    access = jwt(BRAND_DID, expires=timezone.now() + timedelta(hours=2))
    login = responses.post(
        f"{XRPC}/com.atproto.server.createSession", json=session_body(access, "refresh-a")
    )
    responses.get(f"{XRPC}/app.bsky.notification.listNotifications", json={"notifications": []})
    BlueskyAdapter().fetch_mentions(account=account, cursor="", now=timezone.now(), limit=10)
    assert json.loads(login.calls[0].request.body) == {
        "identifier": BRAND_HANDLE,
        "password": "abcd-efgh-ijkl-mnop",
    }
    assert responses.calls[1].request.headers["Authorization"] == f"Bearer {access}"
    stored = PlatformAccount.objects.get(pk=account.pk).credentials_encrypted
    assert access not in stored
    assert "abcd-efgh" not in stored
    assert credentials_decrypt(stored)["refresh_jwt"] == "refresh-a"


@responses.activate
def test_an_access_token_refused_as_expired_is_refreshed_once_and_the_call_made_again(account):
    fresh = jwt(BRAND_DID, expires=timezone.now() + timedelta(hours=2), nonce="fresh")
    url = f"{XRPC}/app.bsky.notification.listNotifications"
    responses.get(url, status=400, json={"error": "ExpiredToken", "message": "Token has expired"})
    responses.get(url, json={"notifications": []})
    refresh = responses.post(
        f"{XRPC}/com.atproto.server.refreshSession", json=session_body(fresh, "refresh-2")
    )
    BlueskyAdapter().fetch_mentions(account=account, cursor="", now=timezone.now(), limit=10)
    assert refresh.calls[0].request.headers["Authorization"] == "Bearer refresh-1"
    assert responses.calls[-1].request.headers["Authorization"] == f"Bearer {fresh}"


@responses.activate
def test_an_app_password_of_another_account_is_refused(account):
    from social.platforms.base import AccountAuthError

    account_credentials_set(
        account_id=account.pk, credentials={"identifier": "x", "app_password": "y"}
    )
    other = {**session_body("a.b.c", "r"), "did": "did:plc:someoneelsesomeoneelseso"}
    responses.post(f"{XRPC}/com.atproto.server.createSession", json=other)
    with pytest.raises(AccountAuthError, match="not of the brand account"):
        BlueskyAdapter().fetch_mentions(account=account, cursor="", now=timezone.now(), limit=10)


def _expired_session(account: PlatformAccount, **credentials: str) -> None:
    account_credentials_set(
        account_id=account.pk,
        credentials={
            "access_jwt": jwt(BRAND_DID, expires=timezone.now() - timedelta(minutes=1)),
            **credentials,
        },
    )
    account.refresh_from_db()


@responses.activate
def test_a_refused_refresh_token_falls_back_to_the_app_password(account):
    _expired_session(
        account, identifier=BRAND_HANDLE, app_password="abcd-efgh-ijkl-mnop", refresh_jwt="burnt"
    )
    fresh = jwt(BRAND_DID, expires=timezone.now() + timedelta(hours=2), nonce="login")
    refresh = responses.post(
        f"{XRPC}/com.atproto.server.refreshSession",
        status=400,
        json={"error": "ExpiredToken", "message": "Token has been revoked"},
    )
    login = responses.post(
        f"{XRPC}/com.atproto.server.createSession", json=session_body(fresh, "refresh-b")
    )
    responses.get(f"{XRPC}/app.bsky.notification.listNotifications", json={"notifications": []})
    BlueskyAdapter().fetch_mentions(account=account, cursor="", now=timezone.now(), limit=10)
    assert refresh.calls[0].request.headers["Authorization"] == "Bearer burnt"
    assert json.loads(login.calls[0].request.body)["identifier"] == BRAND_HANDLE
    assert responses.calls[-1].request.headers["Authorization"] == f"Bearer {fresh}"
    stored = credentials_decrypt(PlatformAccount.objects.get(pk=account.pk).credentials_encrypted)
    assert stored["refresh_jwt"] == "refresh-b"


@responses.activate
def test_a_wrong_app_password_is_an_authorisation_error_and_nothing_is_stored(account):
    from social.platforms.base import AccountAuthError

    _expired_session(account, identifier=BRAND_HANDLE, app_password="wrong")
    before = PlatformAccount.objects.get(pk=account.pk).credentials_encrypted
    responses.post(
        f"{XRPC}/com.atproto.server.createSession",
        status=401,
        json={"error": "AuthenticationRequired", "message": "Invalid identifier or password"},
    )
    with pytest.raises(AccountAuthError, match="refused the app password"):
        BlueskyAdapter().fetch_mentions(account=account, cursor="", now=timezone.now(), limit=10)
    assert PlatformAccount.objects.get(pk=account.pk).credentials_encrypted == before


@responses.activate
def test_without_a_stored_identifier_the_app_password_logs_in_on_the_accounts_did(account):
    # The brand renamed its handle: its DID stays, and the service takes it as the identifier.
    _expired_session(account, app_password="abcd-efgh-ijkl-mnop")
    fresh = jwt(BRAND_DID, expires=timezone.now() + timedelta(hours=2), nonce="did")
    login = responses.post(
        f"{XRPC}/com.atproto.server.createSession", json=session_body(fresh, "refresh-c")
    )
    responses.get(f"{XRPC}/app.bsky.notification.listNotifications", json={"notifications": []})
    BlueskyAdapter().fetch_mentions(account=account, cursor="", now=timezone.now(), limit=10)
    assert json.loads(login.calls[0].request.body) == {
        "identifier": BRAND_DID,
        "password": "abcd-efgh-ijkl-mnop",
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_renewal_waits_a_few_seconds_at_most_for_the_account_row(monkeypatch):
    from django.db import transaction

    from social.platforms import sessions
    from social.platforms.base import TransientError

    monkeypatch.setattr(sessions, "LOCK_TIMEOUT", timedelta(seconds=1))
    acct = PlatformAccount.objects.create(
        platform="bluesky", platform_user_id=BRAND_DID, handle=BRAND_HANDLE
    )
    _expired_session(acct, identifier=BRAND_HANDLE, app_password="p", refresh_jwt="r")
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:  # another worker renewing, stuck on a slow service
        try:
            with transaction.atomic():
                PlatformAccount.objects.select_for_update().get(pk=acct.pk)
                locked.set()
                release.wait(timeout=8)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        started = timezone.now()
        with responses.RequestsMock(), pytest.raises(TransientError, match="busy"):
            BlueskyAdapter().fetch_mentions(account=acct, cursor="", now=timezone.now(), limit=10)
        assert timezone.now() - started < timedelta(seconds=5)
    finally:
        release.set()
        holder.join(timeout=30)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_callers_with_an_expired_access_token_refresh_the_session_once():
    acct = PlatformAccount.objects.create(
        platform="bluesky", platform_user_id=BRAND_DID, handle=BRAND_HANDLE
    )
    account_credentials_set(
        account_id=acct.pk,
        credentials={
            "identifier": BRAND_HANDLE,
            "app_password": "abcd-efgh-ijkl-mnop",
            "access_jwt": jwt(BRAND_DID, expires=timezone.now() - timedelta(minutes=1)),
            "refresh_jwt": "single-use",
        },
    )
    fresh = jwt(BRAND_DID, expires=timezone.now() + timedelta(hours=2), nonce="new")
    refreshes: list[str] = []

    def refresh_endpoint(request):
        token = request.headers["Authorization"].removeprefix("Bearer ")
        refreshes.append(token)
        if token != "single-use":  # the service burns used refresh tokens
            return 400, {}, json.dumps({"error": "ExpiredToken", "message": "used"})
        return 200, {}, json.dumps(session_body(fresh, "next"))

    barrier = threading.Barrier(2)
    served: list[str] = []
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            account = PlatformAccount.objects.get(pk=acct.pk)
            barrier.wait(timeout=10)
            BlueskyAdapter().fetch_mentions(
                account=account, cursor="", now=timezone.now(), limit=10
            )
            served.append("ok")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    with responses.RequestsMock() as mocked:
        mocked.add_callback(
            responses.POST, f"{XRPC}/com.atproto.server.refreshSession", callback=refresh_endpoint
        )
        mocked.get(f"{XRPC}/app.bsky.notification.listNotifications", json={"notifications": []})
        threads = [threading.Thread(target=caller) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        reads = [
            c.request.headers["Authorization"]
            for c in mocked.calls
            if "listNotifications" in c.request.url
        ]
    assert errors == []
    assert served == ["ok", "ok"]
    assert refreshes == ["single-use"]
    assert reads == [f"Bearer {fresh}", f"Bearer {fresh}"]
    stored = credentials_decrypt(PlatformAccount.objects.get(pk=acct.pk).credentials_encrypted)
    assert stored["refresh_jwt"] == "next"


# --- replay_posts -------------------------------------------------------------------------------
def replay(path: Path) -> dict[str, int]:
    out = io.StringIO()
    call_command(
        "replay_posts", str(path), "--platform", "bluesky", stdout=out, stderr=io.StringIO()
    )
    counts = {}
    for line in out.getvalue().splitlines()[1:]:
        outcome, count = line.strip().split(": ")
        counts[outcome] = int(count)
    return counts


@pytest.mark.django_db
def test_replaying_the_recorded_thread_and_again_decides_nothing_twice():
    path = FIXTURES / "thread_view_post_with_embed_media.json"
    assert replay(path) == {"no_campaign": 1}
    assert replay(path) == {}


@pytest.mark.django_db
def test_replaying_notifications_and_a_search_page_decides_them_like_the_feed(tmp_path):
    from catalog.tests.factories import CampaignFactory

    CampaignFactory(platform="bluesky", hashtag="BuyKindleFireHD")
    _bluesky_buyer("alice.bsky.social", ALICE_DID)
    purchase = post_view(
        "3kreplay0000a",
        ALICE_DID,
        "alice.bsky.social",
        post_record(f"Привет 👋🏽 @{BRAND_HANDLE} #BuyKindleFireHD"),
    )
    stranger = post_view(
        "3kreplay0000b",
        BOB_DID,
        "bob.bsky.social",
        post_record(f"@{BRAND_HANDLE} #BuyKindleFireHD"),
    )
    other = post_view("3kreplay0000c", BOB_DID, "bob.bsky.social", post_record("hello"))
    like = {**notification(other), "reason": "like"}
    notifications = tmp_path / "notifications.json"
    notifications.write_text(
        json.dumps(
            {"notifications": [notification(purchase), notification(stranger), like], "cursor": "c"}
        )
    )
    assert replay(notifications) == {"order_created": 1, "not_linked": 1}
    assert replay(notifications) == {}
    search = tmp_path / "search.json"
    search.write_text(json.dumps({"posts": [purchase, other], "hitsTotal": 2}))
    assert replay(search) == {"no_campaign": 1}  # the purchase was decided already
