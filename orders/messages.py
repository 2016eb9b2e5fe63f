"""What Hashcart says: public replies and private e-mails.

Public replies leak nothing private (DESIGN §8): no amount beyond the public price, no address,
no card digits, no reason for a refusal. Reasons and details go by e-mail only. The exact total
with sales tax is private too (it would tell where the buyer lives, DESIGN §3.8): replies say
"+tax" (or "tax incl."), and the total with its tax lines is e-mailed before the buyer confirms.

Public replies fit their platform's length rule (``social.platforms.reply_fits``, DESIGN §4):
a reply too long with the product's name gets the longest shortening of it that fits, ending
in "…", and without it if none does; a campaign's hashtag goes next. The handle, the code and
the window are never left out: a reply that cannot fit even so is queued as it is, and the
platform's refusal is recorded on it. E-mail subjects are cut where they are queued
(``orders.services.common.notification``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from urllib.parse import urlencode

import regex
from django.conf import settings
from django.core import signing
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import Cardholder
from accounts.selectors import campaign_link_mark
from catalog.models import Campaign
from core.when import local_moment_words, moment_words
from orders.models import CancelReason, Dispute, Order, Return
from orders.receipts import ReceiptContent
from social.models import Platform
from social.platforms import reply_fits

NOT_ME_SALT = "orders.not-me"
EMAIL_CONFIRM_SALT = "orders.email-confirm"
AUTHENTICATE_SALT = "orders.authenticate"
PRIVATE_CONFIRM_SALT = "orders.private-confirm"
# The decline code recorded when authorization gave up after its retries (no answer at all).
GATEWAY_UNAVAILABLE = "gateway_unavailable"
# The decline code of an order whose buyer did not authenticate their card in time.
AUTHENTICATION_LAPSED = "authentication_lapsed"
# Decline codes of a card authentication the buyer did not pass (the sandbox's, Stripe's).
AUTHENTICATION_FAILED = frozenset(
    {"authentication_failed", "payment_intent_authentication_failure"}
)


def money(amount: object, currency: str) -> str:
    return f"${amount}" if currency == "USD" else f"{amount} {currency}"


def percent(rate: object) -> str:
    """A tax rate (a fraction, ``"0.04500"``) as a percentage: ``4.5%``."""
    return f"{(Decimal(str(rate)) * 100).normalize():f}%"


def tax_phrase(order: Order) -> str:
    """How a public reply speaks of tax: the price "+tax", or "tax incl." when it includes it."""
    return "tax incl." if order.price_includes_tax else "+tax"


def amount_lines(order: Order) -> str:
    """The order's exact amounts for a private e-mail: the subtotal, each jurisdiction's tax
    (its rate and amount) and the total, aligned; "no sales tax" when there is none."""
    rows: list[tuple[str, str]] = [
        (
            "Price" if order.quantity == 1 else f"Price ({order.quantity} units)",
            money(order.subtotal, order.currency),
        )
    ]
    lines = order.tax_lines or []
    included = " (included)" if order.price_includes_tax else ""
    rows += [
        (
            f"{line['jurisdiction']} tax {percent(line['rate'])}{included}",
            money(line["amount"], order.currency),
        )
        for line in lines
    ]
    if not lines:
        rows.append(("Sales tax", "none at this address"))
    rows.append(("Total", money(order.total, order.currency)))
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"  {label:<{width}}{amount:>12}" for label, amount in rows)


def total_phrase(order: Order) -> str:
    """The total for a private e-mail, with the tax it holds: "$162.23 (sales tax $13.23
    included)", or "$149.00 (no sales tax)"."""
    total = money(order.total, order.currency)
    if not order.tax_lines:
        return f"{total} (no sales tax)"
    return f"{total} (sales tax {money(order.tax_total, order.currency)} included)"


def window_phrase(minutes: float) -> str:
    """ "15 minutes", "1 minute", or "30 seconds" for a window under a minute."""
    if minutes < 1:
        return f"{round(minutes * 60)} seconds"
    whole = round(minutes)
    return f"{whole} minute{'s' if whole != 1 else ''}"


# --- Public replies ---------------------------------------------------------------------------
_GRAPHEME = regex.compile(r"\X")


def _fitted(platform: str, name: str, compose: Callable[[str | None], str]) -> str:
    """``compose(name)`` if it fits ``platform``'s reply rule; else ``compose`` with the longest
    shortening of ``name`` (whole graphemes, then "…") that fits; else ``compose(None)``, the
    reply without the name, whether it fits or not."""
    text = compose(name)
    if reply_fits(platform=platform, text=text):
        return text
    graphemes = _GRAPHEME.findall(name)
    best, low, high = None, 1, len(graphemes) - 1
    while low <= high:  # the most graphemes kept that still fit
        kept = (low + high) // 2
        candidate = compose("".join(graphemes[:kept]).rstrip() + "…")
        if reply_fits(platform=platform, text=candidate):
            best, low = candidate, kept + 1
        else:
            high = kept - 1
    return best if best is not None else compose(None)


def _first_fitting(platform: str, *texts: str) -> str:
    """The first of ``texts`` (longest first) that fits ``platform``'s rule, else the last."""
    return next((t for t in texts if reply_fits(platform=platform, text=t)), texts[-1])


def _what(order: Order, name: str | None) -> str:
    """What an order buys, as a reply says it: ``2 x Tee (M / Blue)``, or ``it``."""
    what = name or "it"
    if order.variant_label:
        what = f"{name} ({order.variant_label})" if name else order.variant_label
    return f"{order.quantity} x {what}" if order.quantity > 1 else what


def reply_confirmation_request(*, order: Order, prefix: str, window_minutes: float) -> str:
    each = " each" if order.quantity > 1 else ""

    def compose(name: str | None) -> str:
        return (
            f"@{order.author_handle} To buy {_what(order, name)} for "
            f"{money(order.unit_price, order.currency)}{each} ({tax_phrase(order)}, free 2-day "
            "shipping) post "
            f"#{prefix}{order.confirmation_code} within {window_phrase(window_minutes)}. "
            "Not you? Ignore this and it lapses."
        )

    return _fitted(order.platform, order.product_name, compose)


def reply_paid(*, order: Order) -> str:
    def compose(name: str | None) -> str:
        what = (
            f"{name} (#{order.confirmation_code})" if name else f"Order #{order.confirmation_code}"
        )
        return (
            f"@{order.author_handle} Thanks! {what} is "
            "confirmed and ships free with 2-day delivery. Your receipt is in your e-mail."
        )

    return _fitted(order.platform, order.product_name, compose)


def reply_declined(*, order: Order) -> str:
    return (
        f"@{order.author_handle} We couldn't complete order #{order.confirmation_code}. "
        "We've e-mailed you the details."
    )


def reply_confirm_email_pending(*, order: Order) -> str:
    return (
        f"@{order.author_handle} Got it. To finish order #{order.confirmation_code}, also "
        "press Confirm in the e-mail we sent you."
    )


def reply_confirm_late(*, handle: str, code: str) -> str:
    return f"@{handle} Sorry, the time to confirm #{code} has passed, so it was not ordered."


def reply_check_email(*, order: Order) -> str:
    """The public reply of a confirmation request that went privately: no code (DESIGN §3.7)."""
    return _first_fitting(
        order.platform,
        f"@{order.author_handle} Thanks for your order of #{order.hashtag}: we've e-mailed you "
        "how to confirm it. Please check your e-mail.",
        f"@{order.author_handle} Thanks for your order: we've e-mailed you how to confirm it. "
        "Please check your e-mail.",
    )


def reply_sold_out(*, handle: str, campaign: Campaign, platform: str | None = None) -> str:
    """Fitted to ``platform``'s rule, the network of the post answered (default: the
    campaign's first network; a campaign may run on several, issue 13 item 7)."""
    on = platform or campaign.platform

    def compose(name: str | None) -> str:
        if name is None:
            return _first_fitting(
                on,
                f"@{handle} Sorry, #{campaign.hashtag} is sold out.",
                f"@{handle} Sorry, this is sold out.",
            )
        return f"@{handle} Sorry, {name} (#{campaign.hashtag}) is sold out."

    return _fitted(on, campaign.product.name, compose)


def reply_closed(
    *,
    handle: str,
    campaign: Campaign,
    posted_at: datetime | None = None,
    platform: str | None = None,
) -> str:
    """The answer to a purchase of a campaign that is not running at ``posted_at``: before it
    starts, when it opens; after it ends, that the offer ended; paused (or no time), that it is
    not open now. Each text is the same for every post of an author, so it goes once. Fitted
    to ``platform``'s rule (the post's network; default the campaign's first)."""
    on = platform or campaign.platform
    if posted_at is not None and posted_at >= campaign.ends_at:
        return _first_fitting(
            on,
            f"@{handle} Sorry, the #{campaign.hashtag} offer has ended.",
            f"@{handle} Sorry, this offer has ended.",
        )
    if posted_at is not None and posted_at < campaign.starts_at and not campaign.paused:
        opens = moment_words(campaign.starts_at)
        return _first_fitting(
            on,
            f"@{handle} #{campaign.hashtag} opens for orders on {opens}. Post it again then.",
            f"@{handle} This opens for orders on {opens}. Post it again then.",
        )
    return _first_fitting(
        platform or campaign.platform,
        f"@{handle} #{campaign.hashtag} isn't open for orders right now.",
        f"@{handle} This isn't open for orders right now.",
    )


def reply_invite(*, handle: str, campaign: Campaign, platform: str | None = None) -> str:
    """To the author of a purchase post who has not linked an account: how to start, with the
    opt-in page's link (the campaign preselected). Nothing about them but their handle. Fitted
    to ``platform``'s rule (the post's network; default the campaign's first)."""
    url = link_page_url(hashtag=campaign.hashtag)
    return _first_fitting(
        platform or campaign.platform,
        f"@{handle} To buy with #{campaign.hashtag}, first link your account and a card: {url}",
        f"@{handle} To buy by post, first link your account and a card: {url}",
        f"@{handle} To buy by post, first link your account and a card: {link_page_url()}",
    )


def site_url(view: str, *args: object) -> str:
    """The absolute address of ``view`` (a URL name) on this site (``HASHCART["SITE_URL"]``),
    for links in e-mails and replies, which are read away from any request."""
    return settings.HASHCART["SITE_URL"].rstrip("/") + reverse(view, args=args)


def link_page_url(*, hashtag: str = "") -> str:
    """The opt-in page (``/link/``), with ``?campaign=<hashtag>`` naming the offer to buy and
    our mark on it (the page shows it only with the mark: ``accounts.views.link``)."""
    url = site_url("accounts:link")
    if not hashtag:
        return url
    return f"{url}?{urlencode({'campaign': hashtag, 'm': campaign_link_mark(hashtag)})}"


def reply_blocked(*, handle: str, campaign: Campaign, platform: str | None = None) -> str:
    return _first_fitting(
        platform or campaign.platform,
        f"@{handle} We couldn't take this order for #{campaign.hashtag}. Please check your e-mail.",
        f"@{handle} We couldn't take this order. Please check your e-mail.",
    )


def reply_quantity_invalid(
    *, handle: str, campaign: Campaign, limit: int, platform: str | None = None
) -> str:
    """A purchase whose quantity is 0, two numbers, or above the campaign's per-buyer limit (a
    public term of the offer): nothing was reserved. Fitted to ``platform``'s rule (the post's
    network; default the campaign's first)."""
    many = f"a quantity from 1 to {limit}" if limit > 1 else "no quantity (one per buyer)"
    return _first_fitting(
        platform or campaign.platform,
        f"@{handle} Nothing reserved yet: post #{campaign.hashtag} again with {many}.",
        f"@{handle} Nothing reserved yet: post again with {many}.",
    )


def reply_variant_needed(
    *,
    handle: str,
    campaign: Campaign,
    choices: list[tuple[str, list[str]]],
    platform: str | None = None,
) -> str:
    """A purchase that names no variant, or several, and no saved preference settles it: the
    reply lists each option's values (``Size: S, M, L; Colour: Blue, Red``), as many values as
    ``platform``'s length rule allows (the post's network; default the campaign's first; the
    rest as "…"), and nothing was reserved."""
    on = platform or campaign.platform

    def compose(listing: str) -> str:
        return f"@{handle} Which one? Post #{campaign.hashtag} with {listing}."

    def listing(kept: int) -> str:
        parts = []
        for name, values in choices:
            shown = values[:kept] + (["…"] if len(values) > kept else [])
            parts.append(f"{name}: {', '.join(shown)}")
        return "; ".join(parts)

    longest = max((len(values) for _, values in choices), default=0)
    for kept in range(longest, 0, -1):
        text = compose(listing(kept))
        if reply_fits(platform=on, text=text):
            return text
    names = " and ".join(name.lower() for name, _ in choices) or "your choice"
    return _first_fitting(
        on,
        f"@{handle} Which one? Post #{campaign.hashtag} again with your {names}.",
        f"@{handle} Which one? Post again with your {names}.",
    )


# --- Private e-mails --------------------------------------------------------------------------
def _signed_order_url(order_id: int, *, salt: str, view: str) -> str:
    """An absolute link to ``view`` for one order, signed with ``salt`` (``orders.views``
    reads it back with the same salt), usable without signing in."""
    token = signing.dumps({"order": order_id}, salt=salt, compress=True)
    return site_url(view, token)


def not_me_url(order_id: int) -> str:
    """A signed link that cancels the order and pauses purchasing, usable without signing in."""
    return _signed_order_url(order_id, salt=NOT_ME_SALT, view="orders:not_me")


def email_confirm_url(order_id: int) -> str:
    """A signed link whose click confirms an order above the cardholder's e-mail threshold."""
    return _signed_order_url(order_id, salt=EMAIL_CONFIRM_SALT, view="orders:email_confirm")


def private_confirm_url(order_id: int) -> str:
    """A signed link to the page whose Confirm button confirms an order whose confirmation
    request went privately (``orders.services.private``), as the post would."""
    return _signed_order_url(order_id, salt=PRIVATE_CONFIRM_SALT, view="orders:private_confirm")


def authenticate_url(order_id: int) -> str:
    """A signed link to the page where the buyer authenticates an order's card payment."""
    return _signed_order_url(order_id, salt=AUTHENTICATE_SALT, view="orders:authenticate")


def order_page_url(order_id: int) -> str:
    """The absolute link to the buyer's page of the order (``orders:cardholder_order``), which
    they see once signed in. Every e-mail about an order carries it
    (``orders.services.common.notification``)."""
    return site_url("orders:cardholder_order", order_id)


def order_page_line(order_id: int) -> str:
    """The closing line of an e-mail about an order: where its page is."""
    return f"\nYour order's page (sign in to see it):\n{order_page_url(order_id)}\n"


def _greeting(cardholder: Cardholder) -> str:
    return f"Hello {cardholder.user.first_name or 'there'},"


def _how_to_confirm(*, order: Order, prefix: str, window: str) -> str:
    post = f"#{prefix}{order.confirmation_code}"
    if not order.email_confirm_required:
        return f"To buy it, post {post} within {window} of our reply."
    return f"""It is above the amount you want to confirm by e-mail too. To buy it, within {window}
of our reply, post {post} AND open this private link and press Confirm:
{email_confirm_url(order.pk)}"""


def email_order_created(
    *, order: Order, cardholder: Cardholder, prefix: str, window_minutes: float
) -> tuple[str, str]:
    window = window_phrase(window_minutes)
    return (
        f"Confirm your order: {order.product_name}",
        f"""{_greeting(cardholder)}

@{order.author_handle} posted #{order.hashtag} on {order.platform}, which orders:

  {_what(order, order.product_name)}, free two-day shipping to your billing address on file
{amount_lines(order)}

Your card will be charged {total_phrase(order)}.

{_how_to_confirm(order=order, prefix=prefix, window=window)}
If you do nothing, the order lapses and nothing is charged.

Not you? Cancel this order and pause buying by post, no sign-in needed:
{not_me_url(order.pk)}
""",
    )


def email_private_request(
    *, order: Order, cardholder: Cardholder, prefix: str, window_minutes: float
) -> tuple[str, str, str]:
    """Private: the confirmation request itself, when the public replies are too busy to post
    it in time. Its code, and a link to a Confirm button that confirms as the post would; the
    window runs from when this e-mail is sent. Subject, text body and HTML body."""
    window = window_phrase(window_minutes)
    post = f"#{prefix}{order.confirmation_code}"
    confirm = private_confirm_url(order.pk)
    not_me = not_me_url(order.pk)
    subject = f"Confirm your order now: {order.product_name}"
    body = f"""{_greeting(cardholder)}

So many people are buying right now that our public replies are queued. Here is your
confirmation request privately instead.

@{order.author_handle} posted #{order.hashtag} on {order.platform}, which orders:

  {order.product_name}, free two-day shipping to your billing address on file
{amount_lines(order)}

Your card will be charged {total_phrase(order)}.

To buy it, within {window} of this e-mail, either open this private link and press Confirm:
{confirm}
or post {post} to us from your social account.
If you do nothing, the order lapses and nothing is charged.

Not you? Cancel this order and pause buying by post, no sign-in needed:
{not_me}
"""
    html = render_to_string(
        "orders/email/private_request.html",
        {
            "order": order,
            "greeting": _greeting(cardholder),
            "amounts": amount_lines(order),
            "total": total_phrase(order),
            "window": window,
            "post": post,
            "confirm_url": confirm,
            "not_me_url": not_me,
        },
    )
    return subject, body, html


def email_blocked(*, cardholder: Cardholder, campaign: Campaign, reason: str) -> tuple[str, str]:
    return (
        f"We couldn't take your order for #{campaign.hashtag}",
        f"""{_greeting(cardholder)}

A post from your linked account asked to buy {campaign.product.name} with #{campaign.hashtag},
but we could not take the order: {reason}

Nothing was charged. Your settings, and when buying by post opens for you, are here:
{_settings_page()}
""",
    )


def email_paid(*, order: Order, cardholder: Cardholder, promised: date) -> tuple[str, str]:
    return (
        f"Order confirmed: {order.product_name}",
        f"""{_greeting(cardholder)}

Your order #{order.confirmation_code} is confirmed:

  {order.product_name}
  {total_phrase(order)}, authorized on your card;
  charged when it ships
  Free two-day shipping, arriving by {promised:%A %d %B %Y}

Not you? Cancel this order and pause buying by post:
{not_me_url(order.pk)}
""",
    )


def email_declined(*, order: Order, cardholder: Cardholder, code: str = "") -> tuple[str, str]:
    """``code`` ``gateway_unavailable``: the card could not be authorized at all, for lack of an
    answer from the card network; anything else is the card issuer's refusal. Without an answer
    a hold may have been placed all the same (its void is queued): the e-mail says it is being
    released rather than that nothing was charged."""
    if code == GATEWAY_UNAVAILABLE:
        subject = f"We couldn't authorize your card: {order.product_name}"
        reason = "We could not get an answer from your card's network in time"
        charged = (
            "The order is cancelled and you will not be charged: if your bank shows a pending\n"
            "hold for it, we are releasing it."
        )
    elif code == AUTHENTICATION_LAPSED:
        subject = f"Card not approved in time: {order.product_name}"
        reason = "Your bank's check of the payment was not completed in time"
        charged = (
            "The order is cancelled and you will not be charged: if your bank shows a pending\n"
            "hold for it, we are releasing it."
        )
    elif code in AUTHENTICATION_FAILED:
        subject = f"Your bank did not approve the payment: {order.product_name}"
        reason = "Your bank's check of the payment did not succeed"
        charged = "The order is cancelled and nothing was charged."
    else:
        subject = f"Your card was declined: {order.product_name}"
        reason = "Your card was declined"
        charged = "The order is cancelled and nothing was charged."
    return (
        subject,
        f"""{_greeting(cardholder)}

{reason} for order #{order.confirmation_code} ({order.product_name},
{money(order.total, order.currency)}). {charged}
You can add another card on the linking page and post the hashtag again.
""",
    )


def email_authentication_required(
    *, order: Order, cardholder: Cardholder, expires_at: datetime
) -> tuple[str, str]:
    """Private: the card's bank asks the buyer to approve the payment, by ``expires_at``."""
    return (
        f"Approve your payment: {order.product_name}",
        f"""{_greeting(cardholder)}

Your bank asks you to approve the payment for order #{order.confirmation_code}:

  {order.product_name}
  {total_phrase(order)}, free two-day shipping

Open this private link and follow your bank's steps by {expires_at:%H:%M} UTC on
{expires_at:%d %B %Y}:
{authenticate_url(order.pk)}

Until then the item is kept for you. If you do nothing, the order lapses and nothing is charged.

Not you? Cancel this order and pause buying by post, no sign-in needed:
{not_me_url(order.pk)}
""",
    )


def email_expired(
    *, order: Order, cardholder: Cardholder, request_failed: bool = False
) -> tuple[str, str]:
    """``request_failed``: we could not post the confirmation request, so the buyer never had
    the chance to confirm; the e-mail says so rather than blaming them."""
    why = (
        "lapsed because we could not post the reply asking you to confirm it"
        if request_failed
        else "was not confirmed in time, so it lapsed"
    )
    return (
        f"Order not confirmed: {order.product_name}",
        f"""{_greeting(cardholder)}

Order #{order.confirmation_code} for {order.product_name} {why}.
Nothing was charged. You can post the hashtag again while the campaign runs.
""",
    )


def email_reminder(
    *, order: Order, cardholder: Cardholder, prefix: str, now: datetime
) -> tuple[str, str]:
    """Sent once, a few minutes before the confirmation window of a pending order closes."""
    assert order.expires_at is not None  # noqa: S101 (only orders with an open window)
    left = window_phrase(max(0.0, (order.expires_at - now).total_seconds() / 60))
    posted = order.post_confirmed_at is not None
    todo = (
        "You posted the confirmation; one step is left."
        if posted
        else f"To buy it, post #{prefix}{order.confirmation_code} before then."
    )
    also = (
        f"\n{'Open' if posted else 'Also open'} this private link and press Confirm:\n"
        f"{email_confirm_url(order.pk)}"
        if order.email_confirm_required and order.email_confirmed_at is None
        else ""
    )
    return (
        f"{left} left to confirm: {order.product_name}",
        f"""{_greeting(cardholder)}

Your order #{order.confirmation_code} for {order.product_name} is waiting for you to confirm it.
About {left} left: the time to confirm ends on {moment_words(order.expires_at)}.

{todo}{also}
If you do nothing, the order lapses and nothing is charged.

Not you? Cancel this order and pause buying by post, no sign-in needed:
{not_me_url(order.pk)}
""",
    )


@dataclass(frozen=True)
class Hint:
    """What a post that almost matched was read as, and what to post instead."""

    understood: str
    instead: str


def email_hint(*, cardholder: Cardholder, hint: Hint) -> tuple[str, str]:
    """A private hint for a post that almost matched (DESIGN §3.7): nothing was done with it."""
    return (
        f"Did you mean {hint.instead}?",
        f"""{_greeting(cardholder)}

We read a post from your linked account as {hint.understood}, but it did not match exactly,
so nothing was ordered, confirmed or reserved.

To do that, post {hint.instead} (one word, no spaces, as it is written here).
""",
    )


def _cancelled_by(*, order: Order, reason: str) -> str:
    """Who or what cancelled the order (a ``CancelReason``), as a sentence."""
    if reason == CancelReason.NOT_ME:
        return 'You cancelled it with the "Not me" link in our e-mail.'
    if reason == CancelReason.BUYER:
        return "You cancelled it on your settings page."
    if reason == CancelReason.MERCHANT:
        return f"The seller, {order.merchant.name}, cancelled it."
    if reason == CancelReason.OPERATOR:
        return "Hashcart's operations team cancelled it."
    if reason == CancelReason.PAUSED:
        return "It was cancelled because buying by post was paused."
    if reason == CancelReason.UNLINKED:
        platform = dict(Platform.choices).get(order.platform, order.platform)
        return (
            f"It was cancelled because the social account that placed it (@{order.author_handle} "
            f"on {platform}) was unlinked from your Hashcart account."
        )
    if reason == CancelReason.CARD_REMOVED:
        return (
            f"It was cancelled because the card it was to be paid with ({order.card.brand} "
            f"ending {order.card.last4}) was removed from your account."
        )
    if reason == CancelReason.CONSENT_WITHDRAWN:
        return "It was cancelled because you withdrew your consent to buying by post."
    return "It was cancelled."


def email_cancelled(
    *, order: Order, cardholder: Cardholder, reason: str, paused_because: str | None = None
) -> tuple[str, str]:
    """Says who cancelled (``reason``, an ``orders.models.CancelReason``) and, only when buying
    by post is paused (``paused_because``: the pause's reason), that it is; the advice to change
    the social account's password goes only with "Not me", where someone else posted."""
    paused = ""
    if paused_because is not None:
        why = f" ({paused_because})" if paused_because else ""
        settings_url = _settings_page()
        paused = (
            f"\nBuying by post is paused for your account{why}: posts from your linked\n"
            f"accounts buy nothing until you resume it on your settings page:\n{settings_url}\n"
        )
        if reason == CancelReason.NOT_ME:
            paused += (
                "If someone else posted from your social account, change that account's "
                "password\nbefore you resume.\n"
            )
    return (
        f"Order cancelled: {order.product_name}",
        f"""{_greeting(cardholder)}

Order #{order.confirmation_code} for {order.product_name} is cancelled, and nothing will be
charged. {_cancelled_by(order=order, reason=reason)}
{paused}""",
    )


def email_shipped(
    *, order: Order, cardholder: Cardholder, carrier: str, tracking: str
) -> tuple[str, str]:
    # Sent when the label is bought, before the carrier has scanned the parcel: it says so,
    # as the order's pages do (``orders.progress``), rather than "on its way".
    return (
        f"Ready to ship: {order.product_name}",
        f"""{_greeting(cardholder)}

The shipping label of order #{order.confirmation_code} ({order.product_name}) is bought:
the carrier picks the parcel up next, for two-day delivery.
Your card was charged {total_phrase(order)}.

Carrier: {carrier}, tracking number {tracking}
(tracking shows the parcel from the carrier's first scan)
""",
    )


# --- Receipts (the e-mail here, the PDF in ``orders.receipt_pdf``: the same words) -----------
@dataclass(frozen=True)
class ReceiptText:
    """A receipt's content as printed: every field a string, dates in the merchant's zone."""

    title: str
    issued: str
    ordered: str
    merchant: tuple[str, ...]  # name, address lines, tax id
    order: str
    items: tuple[tuple[str, str, str, str], ...]  # description (SKU), quantity, unit, amount
    subtotal: str
    taxes: tuple[tuple[str, str], ...]  # jurisdiction (rate), amount
    total: str
    payment: str  # "Paid with Visa ending 4242." or, on a credit note, "Refunded to ..."
    note: str


def receipt_text(content: ReceiptContent) -> ReceiptText:
    """The words of a receipt, shared by its e-mail (both parts) and its PDF."""
    cur = content.currency
    merchant = (content.merchant_name, *content.merchant_address)
    if content.merchant_tax_id:
        merchant = (*merchant, f"Tax id {content.merchant_tax_id}")
    return ReceiptText(
        title=f"{'Credit note' if content.refers_to else 'Receipt'} {content.reference}",
        issued=local_moment_words(content.issued_at, content.time_zone),
        ordered=local_moment_words(content.ordered_at, content.time_zone),
        merchant=merchant,
        order=f"#{content.order_code} (order {content.order_id})",
        items=tuple(
            (
                f"{line.description} (SKU {line.sku})",
                str(line.quantity),
                money(line.unit_price, cur),
                money(line.amount, cur),
            )
            for line in content.items
        ),
        subtotal=money(content.subtotal, cur),
        taxes=tuple(
            (
                f"{tax.jurisdiction} ({percent(tax.rate)})"
                + (", included" if content.tax_included else ""),
                money(tax.amount, cur),
            )
            for tax in content.tax_lines
        ),
        total=money(content.total, cur),
        payment=f"{'Refunded to' if content.refers_to else 'Paid with'} {content.card_brand} "
        f"ending {content.card_last4}.",
        note=(
            f"Gives money back on receipt {content.refers_to}: {content.reason}"
            if content.refers_to
            else "Authorized on your card when you confirmed; charged when the order ships. "
            "Free two-day shipping."
        ),
    )


def email_receipt(*, content: ReceiptContent, cardholder: Cardholder) -> tuple[str, str, str]:
    """The receipt e-mail: subject, plain text and HTML (``orders/email/receipt.html``)."""
    text = receipt_text(content)
    items = "\n".join(
        f"  {quantity} x {description}: {amount} ({unit} each)"
        for description, quantity, unit, amount in text.items
    )
    taxes = "".join(f"\n  {label}: {amount}" for label, amount in text.taxes)
    merchant = "\n".join(f"  {line}" for line in text.merchant)
    pdf_url = order_page_url(content.order_id)
    body = f"""{_greeting(cardholder)}

Thank you for your order. This is your receipt.

{text.title}
Issued {text.issued}
Order {text.order}, placed {text.ordered}

Sold by:
{merchant}

{items}

  Subtotal: {text.subtotal}{taxes}
  Total: {text.total}

{text.payment} {text.note}

A PDF copy is on your order's page:
{pdf_url}
"""
    html = render_to_string(
        "orders/email/receipt.html",
        {"greeting": _greeting(cardholder), "r": text, "pdf_url": pdf_url},
    )
    return f"{text.title}: {content.items[0].description}", body, html


def email_refunded(
    *,
    order: Order,
    cardholder: Cardholder,
    amount: object,
    last4: str,
    refunded_total: object,
    credit_note: str = "",
) -> tuple[str, str]:
    """A refund succeeded: how much went back to which card (its last four digits only), and
    what is left charged when it was in part."""
    left = order.total - refunded_total  # type: ignore[operator]
    whole = left <= 0
    rest = (
        "The order is now refunded in full."
        if whole
        else f"In all {money(refunded_total, order.currency)} of "
        f"{money(order.total, order.currency)} is refunded."
    )
    return (
        f"Refund of {money(amount, order.currency)}: {order.product_name}",
        f"""{_greeting(cardholder)}

We refunded {money(amount, order.currency)} for order #{order.confirmation_code}
({order.product_name}) to your card ending in {last4}. {rest}
Your bank may take a few days to show it.
{_credit_note_line(credit_note, order_id=order.pk)}""",
    )


def _credit_note_line(reference: str, *, order_id: int) -> str:
    """Where the refund's credit note is, when it has one: the order's page."""
    if not reference:
        return ""
    url = order_page_url(order_id)
    return f"\nCredit note {reference}: a PDF copy is on your order's page,\n{url}\n"


# Refusals of a refund asked for by staff (the admin and the API say them as they are).
def refund_refused_status(*, order: Order) -> str:
    return (
        f"Order #{order.confirmation_code} is {order.get_status_display().lower()}: only a "
        "shipped, delivered or partially refunded order (its payment captured) can be refunded."
    )


def refund_refused_amount(*, order: Order, amount: object, left: object) -> str:
    return (
        f"A refund of {money(amount, order.currency)} is more than is left to refund on order "
        f"#{order.confirmation_code}: at most {money(left, order.currency)}."
    )


def refund_refused_not_positive(*, order: Order) -> str:
    return f"A refund of order #{order.confirmation_code} must be more than zero, in cents."


def cancel_refused(*, order: Order) -> str:
    return f"Order #{order.confirmation_code} can no longer be cancelled."


# --- Disputes: "Not me" after shipping (DESIGN §3.4, §8) ----------------------------------------
def _orders_page(order: Order) -> str:
    """The buyer's page of the order, where its case and returns are followed."""
    return order_page_url(order.pk)


def _settings_page() -> str:
    """The cardholder's settings page, where their orders and waitlists are listed."""
    return site_url("accounts:settings")


def email_dispute_opened(*, dispute: Dispute, cardholder: Cardholder) -> tuple[str, str]:
    order = dispute.order
    return (
        f"We opened a case: {order.product_name}",
        f"""{_greeting(cardholder)}

You told us you did not place order #{order.confirmation_code} ({order.product_name}), which
has already shipped. We opened a case with the merchant, who answers by
{dispute.deadline:%A %B %-d, %Y}: a refund once the goods come back, a refund without them, or
a refusal with a reason. Buying by post is paused on your account until you resume it.

If someone else used your social account, change its password. Follow the case here:
{_orders_page(order)}
""",
    )


def email_dispute_resolved(*, dispute: Dispute, cardholder: Cardholder) -> tuple[str, str]:
    """The merchant's answer to a case: how the money comes back, or why it does not."""
    order = dispute.order
    answers = {
        "resolved_refund": "The merchant refunds what you paid, without asking for the goods "
        "back. A separate e-mail confirms the refund once it reaches your card.",
        "resolved_refund_on_return": "The merchant refunds what you paid once the goods come "
        "back. We e-mail you a prepaid return label; the refund follows when the carrier "
        "delivers the parcel back.",
        "rejected": "The merchant rejected it. If you disagree, ask our team to review it from "
        "your orders page.",
    }
    note = f"\nThe merchant's note: {dispute.note}\n" if dispute.note else ""
    return (
        f"Your case about order #{order.confirmation_code}: {dispute.get_status_display().lower()}",
        f"""{_greeting(cardholder)}

About order #{order.confirmation_code} ({order.product_name}), which you told us you did not
place: {answers.get(str(dispute.status), "")}
{note}
Your order's page: {_orders_page(order)}
""",
    )


def email_dispute_escalated(*, dispute: Dispute, cardholder: Cardholder) -> tuple[str, str]:
    order = dispute.order
    return (
        f"We are reviewing your case about order #{order.confirmation_code}",
        f"""{_greeting(cardholder)}

You asked us to review the merchant's refusal of your case about order
#{order.confirmation_code} ({order.product_name}). Our team looks at it and e-mails you.
""",
    )


# Refusals of a dispute step (the admin, the API and the buyer's page say them as they are).
def dispute_refused_status(*, dispute: Dispute) -> str:
    return (
        f"The case about order #{dispute.order.confirmation_code} is "
        f"{dispute.get_status_display().lower()}: it cannot be changed that way now."
    )


def dispute_refused_nothing_left(*, order: Order) -> str:
    return f"Nothing is left to refund on order #{order.confirmation_code}."


def dispute_refused_reason(*, max_length: int) -> str:
    return f"Rejecting a case needs a reason of 1 to {max_length} characters, which the buyer sees."


# --- Returns (DESIGN §3.4) ----------------------------------------------------------------------
def email_return(*, returned: Return, kind: str, cardholder: Cardholder) -> tuple[str, str]:
    """The buyer's e-mail at each step of a return (``kind``: the step's audit kind)."""
    order = returned.order
    what = f"order #{order.confirmation_code} ({order.product_name})"
    note = f"\nThe merchant's note: {returned.note}\n" if returned.note else ""
    texts = {
        "return_requested": (
            f"Return requested: {order.product_name}",
            f"We received your request to return {what}. The merchant answers it; we e-mail you "
            "then.",
        ),
        "return_approved": (
            f"Return approved: {order.product_name}",
            f"The merchant accepts {what} back. We e-mail you a prepaid return label next; your "
            "refund follows when the parcel is delivered back.",
        ),
        "return_refused": (
            f"Return refused: {order.product_name}",
            f"The merchant did not accept the return of {what}.",
        ),
        "return_label_bought": (
            f"Your return label: {order.product_name}",
            f"Print this label, stick it on the parcel with {what} and hand it to "
            f"{returned.carrier}:\n{returned.label_url}\nTracking number "
            f"{returned.tracking_number}. Your refund follows when it is delivered back.",
        ),
        "return_received": (
            f"Return received: {order.product_name}",
            f"{what[0].upper()}{what[1:]} is back with the merchant. Your refund is on its "
            "way; a separate e-mail confirms it when it reaches your card.",
        ),
    }
    subject, text = texts[kind]
    return (
        subject,
        f"""{_greeting(cardholder)}

{text}
{note}
Your order's page: {_orders_page(order)}
""",
    )


# Refusals of a return step (the buyer's page, the admin and the API say them as they are).
def return_refused_reason(*, max_length: int) -> str:
    return f"Tell us why you are returning it, in 1 to {max_length} characters."


def return_refused_status(*, order: Order) -> str:
    return (
        f"Order #{order.confirmation_code} is {order.get_status_display().lower()}: only a "
        "delivered order can be returned."
    )


def return_refused_late(*, order: Order, delivered_at: datetime, days: int) -> str:
    return (
        f"Order #{order.confirmation_code} was delivered on {delivered_at:%B %-d, %Y}: returns "
        f"are accepted within {days} days of delivery, so it can no longer be returned."
    )


def return_refused_open(*, order: Order) -> str:
    return f"A return of order #{order.confirmation_code} is already under way."


def return_refused_note() -> str:
    return "Refusing a return needs a note, which the buyer reads."


def return_refused_step(*, returned: Return) -> str:
    return (
        f"The return of order #{returned.order.confirmation_code} is "
        f"{returned.get_status_display().lower()}: it cannot be changed that way now."
    )


# --- Waitlist (issue 13): the public reply says only "waitlisted"; positions go by e-mail ------
def reply_waitlisted(*, handle: str, campaign: Campaign, platform: str | None = None) -> str:
    """No position, no count: the queue is the buyer's business (e-mailed). Fitted to
    ``platform``'s rule (the post's network; default the campaign's first)."""
    return _first_fitting(
        platform or campaign.platform,
        f"@{handle} #{campaign.hashtag} is sold out: you're waitlisted. Please check your e-mail.",
        f"@{handle} Sold out: you're waitlisted. Please check your e-mail.",
    )


def email_waitlisted(
    *, cardholder: Cardholder, campaign: Campaign, position: int
) -> tuple[str, str]:
    return (
        f"You're on the waitlist: {campaign.product.name}",
        f"""{_greeting(cardholder)}

A post from your linked account asked to buy {campaign.product.name} with #{campaign.hashtag},
which is sold out. You are number {position} on its waitlist.

When a unit comes back and it is your turn, we reply to your post asking you to confirm, as for
any order, and e-mail you the total. Nothing is charged unless you confirm.
The waitlist closes when the campaign ends. To leave it, use your settings page:
{_settings_page()}
""",
    )


def email_waitlist_skipped(
    *, cardholder: Cardholder, campaign: Campaign, reason: str
) -> tuple[str, str]:
    return (
        f"Your turn on the waitlist: {campaign.product.name}",
        f"""{_greeting(cardholder)}

A unit of {campaign.product.name} (#{campaign.hashtag}) came back and it was your turn on the
waitlist, but we could not take the order: {reason}

You have left the waitlist and nothing was charged. You can review your settings here:
{_settings_page()}
""",
    )


def email_waitlist_closed(*, cardholder: Cardholder, campaign: Campaign) -> tuple[str, str]:
    return (
        f"Waitlist closed: {campaign.product.name}",
        f"""{_greeting(cardholder)}

The campaign #{campaign.hashtag} for {campaign.product.name} has ended, and no unit came back
for you while you waited. Its waitlist is closed and nothing was charged.
""",
    )
