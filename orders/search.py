"""Finding an order for support: one search box, every key a person may paste (issue 14).

Staff type what they have at hand: the order's code (``GAQ37``, ``#gaq37``), the buyer's handle
(``@name`` or ``name``), the purchase post's id or a link to it (X, Mastodon, Bluesky, or an
AT URI). Operators may also type the cardholder's e-mail or the card's last four digits; for
merchant staff those keys are never looked up, so a search can tell them nothing about a
cardholder (DESIGN §10.2).

``search_term_parse`` is pure: it reads the term once, in linear time, into the exact keys it
may mean (a term may mean several: ``ABC23`` is a code and a handle). ``order_search`` turns
each key into an exact match on an indexed column, unions them into one subquery, and fetches
what it found by primary key (``id = ANY(ARRAY(… UNION …))``), so a search at a million orders
is a few index lookups, never a scan and never a ``LIKE '%…'``:

=================  =========================================================================
key                index
=================  =========================================================================
code               ``order_code_idx`` (confirmation_code)
handle             ``order_author_handle_upper_idx`` (UPPER(author_handle): any case)
post id / link     ``post_unique_platform_id`` and ``post_root_idx`` (an edited X post's
                   first id), then the order's unique ``purchase_post_id``
Bluesky handle     ``order_author_handle_upper_idx``, then the post's primary key: the link
link               names the handle, the post is stored under its author's DID
e-mail (operator)  ``user_unique_email_ci`` (LOWER(email)), then the order's ``cardholder_id``
                   index
last four (op.)    ``card_last4_idx``, then the order's ``card_id`` index
=================  =========================================================================

``order_created_between`` is the date-range filter: whole days in the merchant's time zone,
read from ``order_merchant_created_idx`` or ``order_created_idx`` when the list is ordered as
they are (newest first by creation time: ``orders.admin_filters.date_range_ordering``).
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from urllib.parse import urlsplit

from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Concat, Lower, Upper

from core.codes import CONFIRMATION_CODE
from core.lookups import AnyOfSubquery
from orders.models import Order
from social.models import HANDLE_MAX_LENGTH, Platform

# The search box's help, under it on the order list.
SEARCH_HELP = (
    "Order code (#GAQ37), buyer handle (@name), or the purchase post's id or link "
    "(X, Mastodon, Bluesky). Operators also: the cardholder's e-mail or the card's last four."
)

# Longer than any key (a handle is at most HANDLE_MAX_LENGTH; a link a little more): a longer
# term matches nothing and is not read further.
TERM_MAX_LENGTH = HANDLE_MAX_LENGTH + 64

# A Bluesky post's AT URI: ``at://<did or handle>/app.bsky.feed.post/<rkey>``.
BLUESKY_POST_COLLECTION = "app.bsky.feed.post"
_X_HOSTS = frozenset(
    f"{prefix}{domain}" for domain in ("x.com", "twitter.com") for prefix in ("", "www.", "mobile.")
)
_BLUESKY_HOSTS = frozenset({"bsky.app", "www.bsky.app"})
# Platforms whose post id is what a link or a person shows: X's and Mastodon's status ids, the
# sandbox's row ids. (Bluesky's is an AT URI, found from its link.)
_BARE_ID_PLATFORMS = (Platform.X, Platform.MASTODON, Platform.SANDBOX)

# Each part of a key: one character class, anchored, so every match is linear.
_DIGITS = re.compile(r"[0-9]{1,32}")
_LAST4 = re.compile(r"[0-9]{4}")
# A handle: no space, no slash (a link is read as a link); Mastodon's ``user@domain`` included.
_HANDLE = re.compile(r"[^\s/#@][^\s/#]*")
# A Mastodon status id (digits; a ULID on some servers), a Bluesky record key.
_POST_KEY = re.compile(r"[0-9A-Za-z]{1,64}")
_RKEY = re.compile(r"[A-Za-z0-9._:~-]{1,512}")
_DID = re.compile(r"did:[a-z]+:[A-Za-z0-9._:%-]{1,2048}")


@dataclass(frozen=True)
class SearchKeys:
    """The exact keys a search term may mean; empty when it means nothing.

    ``handles`` are upper-cased (matched on UPPER(author_handle)); ``posts`` are (platform,
    post id) pairs; ``bluesky_links`` are (upper-cased handle, record key) pairs, a bsky.app
    link naming its author by handle; ``email`` is lower-cased. ``email`` and ``last4`` are
    cardholder data: only operators' searches use them.
    """

    codes: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()
    posts: tuple[tuple[str, str], ...] = ()
    bluesky_links: tuple[tuple[str, str], ...] = ()
    email: str | None = None
    last4: str | None = None


def search_term_parse(term: str) -> SearchKeys:
    """The keys ``term`` may mean, as the admin's search box receives it.

    - ``at://…`` or a link (with or without ``https://``): the post it points to, if it is an
      X, Bluesky or Mastodon post link; any other link means nothing.
    - ``#GAQ37``: a code (any case). ``@name``: a handle (any case).
    - A bare word: a code if it has a code's shape, and a handle; digits are also a post id
      (X, Mastodon, sandbox), and four digits a card's last four; ``a@b.c`` is also an e-mail.
    """
    term = term.strip()
    if not term or len(term) > TERM_MAX_LENGTH:
        return SearchKeys()
    lowered = term.lower()
    if lowered.startswith("at://"):
        return _at_uri(term)
    if lowered.startswith(("http://", "https://")):
        return _link(term)
    first = term.split("/", 1)[0].lower()
    if "/" in term and "." in first and "@" not in first:
        return _link("https://" + term)  # pasted without its scheme: ``x.com/u/status/1``
    if term.startswith("#"):
        code = term[1:].upper()
        if CONFIRMATION_CODE.matches(code):
            return SearchKeys(codes=(code,))
        return SearchKeys()
    if term.startswith("@"):
        handle = term[1:]
        if _HANDLE.fullmatch(handle):
            return SearchKeys(handles=(handle.upper(),))
        return SearchKeys()
    if not _HANDLE.fullmatch(term):
        return SearchKeys()
    code = term.upper()
    digits = _DIGITS.fullmatch(term) is not None
    return SearchKeys(
        codes=(code,) if CONFIRMATION_CODE.matches(code) else (),
        handles=(term.upper(),),
        posts=tuple((platform, term) for platform in _BARE_ID_PLATFORMS) if digits else (),
        email=lowered if _is_email(term) else None,
        last4=term if _LAST4.fullmatch(term) else None,
    )


def _is_email(word: str) -> bool:
    """``local@domain.tld`` (a word without spaces): one '@', a dot inside the domain."""
    local, at, domain = word.partition("@")
    return bool(local and at) and "@" not in domain and "." in domain[1:-1]


def _bluesky_post(author: str, rkey: str) -> SearchKeys:
    """The post ``rkey`` of ``author``: a DID names it exactly; a handle is resolved through
    the orders' author DIDs (``order_search``)."""
    if not _RKEY.fullmatch(rkey):
        return SearchKeys()
    if _DID.fullmatch(author):
        uri = f"at://{author}/{BLUESKY_POST_COLLECTION}/{rkey}"
        return SearchKeys(posts=((Platform.BLUESKY, uri),))
    if _HANDLE.fullmatch(author) and "@" not in author:
        return SearchKeys(bluesky_links=((author.upper(), rkey),))
    return SearchKeys()


def _at_uri(term: str) -> SearchKeys:
    parts = term[len("at://") :].split("/")
    if len(parts) != 3 or parts[1] != BLUESKY_POST_COLLECTION:
        return SearchKeys()
    return _bluesky_post(parts[0], parts[2])


def _link(term: str) -> SearchKeys:
    try:
        url = urlsplit(term)
        host = (url.hostname or "").lower()
    except ValueError:  # a malformed netloc (an unclosed IPv6 bracket, a bad port)
        return SearchKeys()
    segments = [s for s in url.path.split("/") if s]
    if host in _X_HOSTS:
        # /<user>/status/<id>[/photo/1], /i/web/status/<id>, /<user>/statuses/<id>
        for i, segment in enumerate(segments[:-1]):
            post_id = segments[i + 1]
            if segment in ("status", "statuses") and _DIGITS.fullmatch(post_id):
                return SearchKeys(posts=((Platform.X, post_id),))
        return SearchKeys()
    if host in _BLUESKY_HOSTS:
        # /profile/<handle or DID>/post/<rkey>
        if len(segments) == 4 and segments[0] == "profile" and segments[2] == "post":
            return _bluesky_post(segments[1], segments[3])
        return SearchKeys()
    # Any other host may be a Mastodon server: /@<user>/<id>, /@<user>@<domain>/<id>,
    # /users/<user>/statuses/<id>, /web/statuses/<id>, /web/@<user>/<id>, /notice/<id>.
    if segments and segments[0] == "web":
        segments = segments[1:]
    status_id = None
    if len(segments) == 2 and (
        segments[0].startswith("@") or segments[0] in ("notice", "statuses")
    ):
        status_id = segments[1]
    elif len(segments) == 4 and segments[0] == "users" and segments[2] == "statuses":
        status_id = segments[3]
    if status_id and _POST_KEY.fullmatch(status_id):
        return SearchKeys(posts=((Platform.MASTODON, status_id),))
    return SearchKeys()


def order_search(queryset: QuerySet[Order], term: str, *, operator: bool) -> QuerySet[Order]:
    """The orders of ``queryset`` that ``term`` finds (``search_term_parse``): any of its keys
    matching exactly. ``operator``: also by the cardholder's e-mail and the card's last four;
    never for merchant staff. A term that means nothing finds nothing.

    One query: ``queryset`` (its scope and filters kept) restricted to the ids found by the
    union of one indexed lookup per key (``core.lookups.AnyOfSubquery``).
    """
    keys = search_term_parse(term)
    orders = Order._base_manager.order_by()
    arms: list[QuerySet[Order]] = []
    if keys.codes:
        arms.append(orders.filter(confirmation_code__in=keys.codes))
    handles = orders.alias(handle_key=Upper("author_handle"))
    if keys.handles:
        arms.append(handles.filter(handle_key__in=keys.handles))
    if keys.posts:
        # One condition per id, on (platform, post_id): the unique index's two columns.
        platforms: dict[str, list[str]] = {}
        for platform, post_id in keys.posts:
            platforms.setdefault(post_id, []).append(platform)
        match = Q()
        for post_id, on in platforms.items():
            match |= Q(purchase_post__platform__in=on, purchase_post__post_id=post_id)
            if Platform.X in on:  # an edited post: its link may show its first id
                match |= Q(purchase_post__platform=Platform.X, purchase_post__root_id=post_id)
        arms.append(orders.filter(match))
    for handle, rkey in keys.bluesky_links:
        # The link names the author's handle; the post is stored under their DID, which the
        # orders by that handle carry as ``author_id``.
        uri = Concat(Value("at://"), F("author_id"), Value(f"/{BLUESKY_POST_COLLECTION}/{rkey}"))
        arms.append(
            handles.filter(handle_key=handle, platform=Platform.BLUESKY, purchase_post__post_id=uri)
        )
    if operator and keys.email:
        # LOWER(email) matches the unique index, which leaves out empty e-mails.
        holders = orders.alias(email_key=Lower("cardholder__user__email")).filter(
            ~Q(cardholder__user__email=""), email_key=keys.email
        )
        arms.append(holders)
    if operator and keys.last4:
        arms.append(orders.filter(card__last4=keys.last4))
    if not arms:
        return queryset.none()
    ids = [arm.values("pk") for arm in arms]
    found = ids[0].union(*ids[1:]) if len(ids) > 1 else ids[0]
    # Found first, then fetched by primary key: never a walk of the list's order.
    return queryset.filter(AnyOfSubquery(F("pk"), found))


def day_bounds(
    start: date | None, end: date | None, zone: tzinfo
) -> tuple[datetime | None, datetime | None]:
    """``[from, until)``: from the first instant of ``start`` to the first of the day after
    ``end`` in ``zone`` (``end`` is included), either open when ``None``."""
    since = datetime.combine(start, time.min, tzinfo=zone) if start else None
    until = None
    if end is not None and end < date.max:
        until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone)
    return since, until


def order_created_between(
    queryset: QuerySet[Order], start: date | None, end: date | None, *, zone: tzinfo
) -> QuerySet[Order]:
    """The orders of ``queryset`` created on the days ``start`` to ``end`` (both included) in
    ``zone``, the merchant's time zone; an open end when ``None``."""
    since, until = day_bounds(start, end, zone)
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    return queryset
