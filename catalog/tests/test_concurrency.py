"""Writers racing for one hashtag on PostgreSQL: the exclusion constraint lets one win, and
every other one is told so (also the one PostgreSQL aborts when their checks deadlock)."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from catalog.models import Campaign
from catalog.services import campaign_save
from catalog.tests.factories import ProductFactory


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_campaigns_for_one_hashtag_yield_exactly_one():
    products = ProductFactory.create_batch(4)
    now = timezone.now()
    barrier = threading.Barrier(len(products))
    outcomes = []

    def create(product):
        try:
            barrier.wait(timeout=10)
            campaign_save(
                campaign=Campaign(
                    product=product,
                    hashtag="BuyKindleFireHD",
                    price=Decimal("149"),
                    stock_total=5,
                    starts_at=now,
                    ends_at=now + timedelta(days=9),
                ),
                now=now,
            )
            outcomes.append("saved")
        except ValidationError:
            outcomes.append("refused")
        except Exception as exc:  # anything else is a defect: show it in the assertion
            outcomes.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=create, args=(p,)) for p in products]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["refused", "refused", "refused", "saved"]
    assert Campaign.objects.filter(hashtag_key="buykindlefirehd").count() == 1
