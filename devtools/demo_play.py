"""The demo's scripted purchase: a fresh shopper buys on the sandbox network while the real
workers run the pipeline, and every post and reply is printed as it appears (``run_demo``)."""

import time
from collections.abc import Callable
from typing import Any

from django.db.models import Q
from django.utils import timezone

from devtools.demo import BRAND_HANDLE, demo_buyer_ready
from orders.models import Order, OrderStatus
from sandbox.models import SandboxPost, SandboxUser
from sandbox.services import sandbox_post_create


class DemoStalled(Exception):
    """The pipeline did not answer in time (are the workers running?)."""


def _next_shopper() -> str:
    taken = SandboxUser.objects.filter(handle__istartswith="shopper").count()
    return f"shopper{taken + 1}"


def demo_purchase_play(
    *, say: Callable[[str], None], hashtag: str = "BuyKindleFireHD", timeout: float = 120
) -> Order:
    """Make a new shopper, post the purchase hashtag, wait for the reply, post the confirmation
    and wait for the order to be paid, printing the conversation through ``say``."""
    handle = _next_shopper()
    demo_buyer_ready(
        handle=handle,
        email=f"{handle}@example.com",
        name=handle.title(),
        password="hashcart-demo",
        now=timezone.now(),
    )
    user = SandboxUser.objects.get(handle=handle)
    seen: set[int] = set()

    def show_new() -> list[SandboxPost]:
        posts = list(
            SandboxPost.objects.filter(Q(author=user) | Q(mentions=user))
            .exclude(pk__in=seen)
            .select_related("author")
            .order_by("id")
            .distinct()
        )
        for p in posts:
            seen.add(p.pk)
            say(f"  @{p.author.handle}: {p.text}")
        return posts

    def wait(check: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            show_new()
            found = check()
            if found:
                return found
            time.sleep(0.5)
        raise DemoStalled(f"no {what} after {timeout:.0f} s")

    say(f"A new shopper, @{handle}, buys by post on the sandbox network:")
    purchase = sandbox_post_create(
        handle=handle, text=f"@{BRAND_HANDLE} #{hashtag}", now=timezone.now()
    )
    order: Order = wait(
        lambda: Order.objects.filter(purchase_post__post_id=str(purchase.pk)).first(), "decision"
    )
    wait(lambda: SandboxPost.objects.filter(in_reply_to=purchase).exists(), "reply")
    order.refresh_from_db()
    sandbox_post_create(
        handle=handle, text=f"@{BRAND_HANDLE} #Confirm{order.confirmation_code}", now=timezone.now()
    )
    wait(lambda: Order.objects.filter(pk=order.pk, status=OrderStatus.PAID).exists(), "payment")
    wait(
        lambda: SandboxPost.objects.filter(in_reply_to=purchase, text__contains="Thanks").exists(),
        "receipt reply",
    )
    order.refresh_from_db()
    shipment = order.shipment
    say(
        f"Order #{order.confirmation_code} is {order.status}: ships by {shipment.ship_by}, "
        f"promised for {shipment.promised_delivery}."
    )
    return order
