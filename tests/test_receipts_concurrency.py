"""Receipt numbers under concurrent payments on PostgreSQL, by four worker processes each with
its own connection: distinct and gapless per merchant (DESIGN §3.8; issue 12's acceptance)."""

import multiprocessing
from typing import Any

import pytest
from django.db import connections
from django.db.models import F
from django.utils import timezone

from catalog.tests.factories import CampaignFactory, MerchantFactory
from orders.models import DocumentSequence, Order, OrderStatus, PaymentOperation, Receipt
from orders.services import payment_operation_run
from orders.services.common import payment_operation_queue
from orders.tests.factories import OrderFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
WORKERS = 4


def _confirmed_orders(merchant, *, count, campaigns):
    """``count`` confirmed orders of ``merchant`` spread over ``campaigns`` campaigns (so that
    payments of one merchant do not all queue on one campaign's lock), each with its
    authorization queued."""
    rows = [
        CampaignFactory(merchant=merchant, product__merchant=merchant) for _ in range(campaigns)
    ]
    orders = [
        OrderFactory(campaign=rows[n % campaigns], status=OrderStatus.CONFIRMED)
        for n in range(count)
    ]
    for order in orders:
        payment_operation_queue(order=order, operation="authorize")
    return orders


def _pay(mine: list[int], barrier: Any, failures: Any) -> None:
    """In a worker process: wait for the others, then run this share of the authorizations."""
    try:
        barrier.wait(timeout=60)
        for pk in mine:
            status = payment_operation_run(operation_id=pk, now=timezone.now())
            if status != "done":
                failures.put(f"operation {pk}: {status}")
    except BaseException as exc:  # reported to the test below
        failures.put(repr(exc))
    finally:
        connections.close_all()


def _pay_concurrently(operation_ids: list[int]) -> list[str]:
    """Run the authorizations in WORKERS OS processes (forked, each with its own database
    connection) taking interleaved shares at the same time; returns what went wrong."""
    context = multiprocessing.get_context("fork")
    barrier, failures = context.Barrier(WORKERS), context.Queue()
    connections.close_all()  # a forked child must not share the parent's connection
    workers = [
        context.Process(target=_pay, args=(operation_ids[n::WORKERS], barrier, failures))
        for n in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    found = []
    while not failures.empty():
        found.append(failures.get())
    found += [f"exit {w.exitcode}" for w in workers if w.exitcode != 0]
    return found


def test_200_orders_paid_by_4_workers_get_gapless_receipt_numbers_per_merchant():
    a, b = MerchantFactory(slug="shop-a"), MerchantFactory(slug="shop-b")
    orders_a = _confirmed_orders(a, count=120, campaigns=6)
    orders_b = _confirmed_orders(b, count=80, campaigns=4)
    # The two merchants' payments interleaved, so both series are taken at the same time.
    by_order = dict(
        PaymentOperation.objects.filter(operation="authorize").values_list("order_id", "pk")
    )
    interleaved = [o for pair in zip(orders_a, orders_b, strict=False) for o in pair]
    interleaved += orders_a[len(orders_b) :]
    assert len(interleaved) == 200

    assert _pay_concurrently([by_order[o.pk] for o in interleaved]) == []

    assert Order.objects.filter(status=OrderStatus.PAID).count() == 200
    assert Receipt.objects.count() == 200
    for merchant, count, prefix in ((a, 120, "SHOP-A"), (b, 80, "SHOP-B")):
        receipts = Receipt.objects.filter(merchant=merchant)
        assert sorted(receipts.values_list("number", flat=True)) == list(range(1, count + 1))
        assert set(receipts.values_list("reference", flat=True)) == {
            f"{prefix}-R-{n:06d}" for n in range(1, count + 1)
        }
        assert DocumentSequence.objects.get(merchant=merchant, series="receipt").last_number == (
            count
        )
    assert not Receipt.objects.exclude(merchant_id=F("order__merchant_id")).exists()
