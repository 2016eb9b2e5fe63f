"""Reads for the merchant home page: today's work and the live campaigns (DESIGN §10.2).

The back office's index (``config/templates/admin/index.html``, through the ``merchant_home``
tag) shows one merchant's page: staff see their own merchant's; operators pick one. It lives in
fulfillment because the page reads every domain app and fulfillment is the top of them
(pyproject's import contracts); it reads the label queue and the SLA states from
``fulfillment.selectors`` (the same answer as ``fulfillment_queue``, ``buy_labels`` and the
shipment list), and the disputes from ``orders.selectors``.

Every list is cut at ``LIMIT`` rows (with a flag saying there are more, and a link to the full
list on the page), so the page costs the same handful of queries whatever the merchant's size.
"""

from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby, islice
from typing import Generic, TypeVar

from catalog.models import Campaign, Merchant
from catalog.selectors import campaign_list_live, campaigns_with_waitlist_length
from fulfillment.models import Shipment
from fulfillment.selectors import SlaRow, labels_due_queryset, merchant_today, sla_rows
from orders.models import (
    OPEN_RETURN_STATUSES,
    Dispute,
    OutboxStatus,
    PaymentOperation,
    Return,
)
from orders.selectors import disputes_open

# Rows shown per section; beyond it the section links to its full list.
LIMIT = 50

T = TypeVar("T")


@dataclass(frozen=True)
class Cut(Generic[T]):
    """The first rows of a list and whether it goes on (``more``)."""

    rows: list[T]
    more: bool


def _cut(rows: list[T]) -> Cut[T]:
    return Cut(rows=rows[:LIMIT], more=len(rows) > LIMIT)


@dataclass(frozen=True)
class LabelDay:
    """The shipments waiting for a label that must leave on ``ship_by``, and how that day
    stands against the merchant's today: "overdue", "today" or "ahead"."""

    ship_by: date
    when: str
    shipments: list[Shipment]


@dataclass(frozen=True)
class MerchantHome:
    merchant: Merchant
    today: date
    # The label queue (``labels_due``: by the next business day), by ship-by day, the most
    # overdue first; ``label_ids`` are the shipments shown, for the "Buy labels" button.
    label_days: list[LabelDay]
    label_ids: list[int]
    labels_more: bool
    sla: Cut[SlaRow]
    disputes_count: int
    disputes: list[Dispute]
    returns: Cut[Return]
    payments_failed: Cut[PaymentOperation]
    campaigns: Cut[Campaign]


def merchant_home(*, merchant: Merchant, now: datetime) -> MerchantHome:
    """``merchant``'s work at ``now``: shipments to buy labels for (by ship-by day), late and
    at-risk shipments, open disputes and returns, failed payment operations, and live
    campaigns with their stock left and waitlist length. A bounded number of queries."""
    today = merchant_today(merchant, now)
    due = list(labels_due_queryset(now=now, merchant_id=merchant.pk)[: LIMIT + 1])
    shown = due[:LIMIT]
    label_days = [
        LabelDay(ship_by=day, when=_when(day, today), shipments=list(rows))
        for day, rows in groupby(shown, key=lambda s: s.ship_by)
    ]
    disputes_count, disputes = disputes_open(merchant_id=merchant.pk, limit=LIMIT)
    return MerchantHome(
        merchant=merchant,
        today=today,
        label_days=label_days,
        label_ids=[s.pk for s in shown],
        labels_more=len(due) > LIMIT,
        sla=_cut(list(islice(sla_rows(now=now, merchant_slug=merchant.slug), LIMIT + 1))),
        disputes_count=disputes_count,
        disputes=disputes,
        returns=_cut(
            list(
                Return.objects.filter(merchant=merchant, status__in=OPEN_RETURN_STATUSES)
                .select_related("order")
                .order_by("requested_at", "id")[: LIMIT + 1]
            )
        ),
        payments_failed=_cut(
            list(
                PaymentOperation.objects.filter(
                    status=OutboxStatus.FAILED, order__merchant=merchant
                )
                .select_related("order")
                .order_by("id")[: LIMIT + 1]
            )
        ),
        campaigns=_cut(
            list(
                campaigns_with_waitlist_length(
                    campaign_list_live(now=now).filter(merchant=merchant)
                )[: LIMIT + 1]
            )
        ),
    )


def _when(day: date, today: date) -> str:
    if day < today:
        return "overdue"
    return "today" if day == today else "ahead"


def home_merchants() -> list[Merchant]:
    """The merchants an operator may pick from, by name."""
    return list(Merchant.objects.order_by("name", "id"))
