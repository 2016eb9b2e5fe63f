"""Sales tax for a batch's purchases, asked before the batch locks anything (DESIGN §3.8).

A calculator that answers from the process (the shipped rates table) is used as it is, inside
the batch's transaction. One that asks a service over the network (``remote``: Stripe Tax) must
never be called while the batch holds its locks: a slow answer would hold the campaigns' rows
for everyone. ``batch_tax`` asks it first, outside any transaction, for every purchase of the
batch that may buy (read unlocked: the posts, their buyers' cards, the campaigns' stock), and
the batch then reads those answers (``Prequoted``). A purchase whose question was not asked
ahead (its buyer's address changed in between, or a unit came back to a campaign that was sold
out) gets ``TaxError``, as when the service fails: that purchase is refused for now and its
buyer told to post again.
"""

from collections.abc import Iterable
from datetime import datetime

from accounts.selectors import buyer_snapshots, buyers_for_identities
from catalog.selectors import campaign_indexes, campaigns_stock_left
from orders.services.decide.asking import readings
from orders.services.decide.batch import POST_FIELDS, Batch
from orders.services.decide.classify import classify, confirmation_candidates
from orders.services.decide.snapshot import tax_request
from orders.tax import TaxCalculator, TaxError, TaxQuote, TaxRequest, calculator
from social.selectors import posts_undecided_of, posts_with_brands


class Prequoted(TaxCalculator):
    """The answers a remote calculator gave before the batch began, by question."""

    def __init__(self, answers: dict[tuple[object, ...], TaxQuote | TaxError]) -> None:
        self.answers = answers

    def quote(self, request: TaxRequest) -> TaxQuote:
        answer = self.answers.get(self.key(request))
        if answer is None:
            raise TaxError("this purchase's tax was not asked before the batch began")
        if isinstance(answer, TaxError):
            raise answer
        return answer


def prequote(tax: TaxCalculator, requests: Iterable[TaxRequest]) -> Prequoted:
    """Ask ``tax`` each distinct question of ``requests`` once, now, and keep the answers (a
    failure too) for a ``Prequoted`` calculator. Call outside any transaction: it is a remote
    service."""
    answers: dict[tuple[object, ...], TaxQuote | TaxError] = {}
    for request in requests:
        key = tax.key(request)
        if key not in answers:
            try:
                answers[key] = tax.quote(request)
            except TaxError as exc:
                answers[key] = exc
    return Prequoted(answers)


def batch_tax(*, post_ids: list[int], now: datetime) -> TaxCalculator:
    """The calculator the batch of ``post_ids`` decides with. Call outside any transaction."""
    tax = calculator()
    if not tax.remote:
        return tax
    return prequote(tax, _questions(post_ids=post_ids, now=now))


def _questions(*, post_ids: list[int], now: datetime) -> list[TaxRequest]:
    """The tax questions of the batch's purchases that may buy, as the batch would ask them."""
    rows, brand_user_ids = posts_with_brands(
        posts_undecided_of(post_ids=post_ids, fields=POST_FIELDS)
    )
    if not rows:
        return []
    ahead = Batch(
        posts=rows,
        now=now,
        campaigns=campaign_indexes(platforms={p.platform for p in rows}),
        brand_user_ids=brand_user_ids,
    )
    purchases = classify(ahead, confirmation_candidates(ahead), []).purchases
    buyers = buyers_for_identities(
        identities={(p.post.platform, p.post.author_id) for p in purchases}
    )
    left = campaigns_stock_left({p.campaign.pk for p in purchases})
    snapshots = buyer_snapshots(cardholder_ids={b.cardholder_id for b in buyers.values()})
    # The quantity each post asks for, as the batch will read it (issue 13).
    _, asked = readings(
        (p.post, p.campaign, buyer.cardholder_id)
        for p in purchases
        if (buyer := buyers.get((p.post.platform, p.post.author_id))) is not None
        and left.get(p.campaign.pk, 0) > 0
    )
    questions = []
    for purchase in purchases:
        buyer = buyers.get((purchase.post.platform, purchase.post.author_id))
        snapshot = snapshots.get(buyer.cardholder_id) if buyer is not None else None
        card = snapshot.card if snapshot is not None else None
        reading = asked.get(purchase.post.pk)
        quantity = reading.quantity if reading is not None else None
        if (
            card is not None
            and card.address_complete
            and quantity is not None
            and left.get(purchase.campaign.pk, 0) >= quantity
        ):
            questions.append(tax_request(campaign=purchase.campaign, card=card, quantity=quantity))
    return questions
