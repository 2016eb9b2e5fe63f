"""Deciding inbox posts, a batch per transaction (DESIGN §3.2, §3.3, §3.5).

Every post gets exactly one outcome (``orders.outcomes.PostOutcome``), written with everything
it causes in one transaction: orders and their audit rows, the stock they reserve, and the
outbox rows for replies, e-mails and payment calls. A post already decided is skipped, so
deciding twice changes nothing. Database errors propagate: the transaction rolls back and the
caller (a task) retries.

The steps, one module each:
- ``batch``: lock and read the posts, with the campaigns of their platforms (cached between
  batches, ``catalog.selectors.campaign_indexes``);
- ``classify``: pure, no database: settle what needs no buyer, sort the rest;
- ``links``: ``#Link<CODE>`` claims, applied by accounts;
- ``hints``: posts that matched nothing: a linked cardholder's near miss gets a private hint;
- ``invites``: unlinked authors of purchases, invited to link once per campaign (written
  with the batch);
- ``purchases`` (eligibility, the locks, stock) with ``snapshot`` (what an order holds) and
  ``confirmations`` (``#<prefix><CODE>``), decided under the same campaign locks;
- ``writes``: a bulk statement per table, the outcomes last;
- ``taxes``: the sales tax of the purchases, asked before the transaction when the calculator
  is a service over the network (Stripe Tax), never under the batch's locks.

Locks, always in this order (every service that takes more than one follows it):
1. the posts (``FOR UPDATE SKIP LOCKED``: a post another decider holds is left to it);
2. the purchase controls of the cardholders who may get an order, sorted by cardholder
   (``accounts.services.controls_lock_many``), so the per-buyer limit and the spend caps hold
   under any number of deciders;
3. the campaigns whose stock moves or whose orders are confirmed, sorted by id
   (``catalog.services.campaigns_lock``); stock moves through ``catalog.services.stock_reserve``
   and never passes ``stock_total`` (read under the lock, backed by the check constraint);
4. the orders being confirmed, by compare-and-set on their status.

The number of queries of a batch does not grow with its posts: every read and write is one
statement for the whole batch (a test counts them), except for link claims (a few per claim,
one claim per identity ever) and confirmations posted after their window (the order's expiry,
one by one), both rare.
"""

from collections import Counter
from datetime import datetime

from django.db import transaction

from orders.services.decide import confirmations, hints, links, purchases
from orders.services.decide.batch import batch_load
from orders.services.decide.classify import classify, confirmation_candidates
from orders.services.decide.taxes import batch_tax
from orders.services.decide.writes import batch_write


def posts_decide(*, post_ids: list[int], now: datetime) -> Counter[str]:
    """Decide the undecided posts among ``post_ids`` in one transaction; returns outcome counts.

    Raises nothing for bad input: every post, however odd, ends with one of the outcomes of
    DESIGN §3.2. Database errors propagate (the transaction rolls back and the caller retries).
    """
    # A tax service over the network is asked now, before the batch takes any lock.
    tax = batch_tax(post_ids=post_ids, now=now)
    with transaction.atomic():
        batch = batch_load(post_ids=post_ids, now=now)
        if batch is None:
            return Counter()
        candidates = confirmation_candidates(batch)
        confirm_orders = confirmations.orders_for_confirmation(
            [(p, candidates[p.pk]) for p in batch.posts if p.pk in candidates]
        )
        found = classify(batch, candidates, confirm_orders)
        links.links_apply(batch, found.links)
        hints.hints_decide(batch, found.unmatched)
        purchases.decide_purchases(
            batch, found.purchases, found.confirmations, confirm_orders, tax=tax
        )
        batch_write(batch)
    return Counter(batch.outcomes.values())


__all__ = ["posts_decide"]
