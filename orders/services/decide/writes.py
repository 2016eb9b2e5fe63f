"""Writing a decided batch: a bulk statement per table, whatever the batch's size.

New orders get their codes (``orders.codes``) and are inserted with their audit rows, their
confirmation requests and e-mails; payment operations, e-mails and replies (through
``social.services.replies_queue``) ignore conflicts on their unique keys, so deciding again
writes nothing twice; the posts' outcomes go last, in one UPDATE
(``social.services.posts_record_outcomes``), just before the commit.
"""

from functools import partial

from django.conf import settings
from django.utils import timezone

from accounts.selectors import cardholders_with_users
from orders import messages
from orders.codes import confirmation_codes_new
from orders.models import Notification, Order, OrderEvent, OrderStatus, PaymentOperation
from orders.services.common import event
from orders.services.decide.batch import Batch
from orders.services.decide.invites import invites_draft, invites_forget
from orders.services.decide.snapshot import order_created_email
from orders.services.lifecycle import CONFIRMATION_REQUEST
from orders.services.webhooks.events import order_events_record
from social.models import ReplyPriority
from social.services import posts_record_outcomes, replies_queue


def batch_write(batch: Batch) -> None:
    if batch.new_orders:
        _orders_create(batch)
    if batch.emails:
        cardholders = cardholders_with_users(cardholder_ids={cid for cid, _ in batch.emails})
        batch.notifications.extend(build(cardholders[cid]) for cid, build in batch.emails)
    if batch.events:
        OrderEvent.objects.bulk_create(batch.events, batch_size=1000)
        # Their webhooks, in this transaction: one query when no endpoint listens.
        order_events_record(events=batch.events, now=batch.now)
    if batch.payments:
        PaymentOperation.objects.bulk_create(batch.payments, ignore_conflicts=True)
    if batch.notifications:
        Notification.objects.bulk_create(
            batch.notifications, ignore_conflicts=True, batch_size=1000
        )
    invites = invites_draft(batch)
    if batch.replies or invites:
        queued = {id(d) for d in replies_queue(drafts=batch.replies + invites)}
        invites_forget([d for d in invites if id(d) not in queued])
    # ``decided_at`` is when the outcome is written, the last step before the commit (the batch's
    # rules used ``now``, read when it began): inbox-to-decision latency is measured with it.
    posts_record_outcomes(
        outcomes=batch.outcomes, campaign_ids=batch.campaign_of, decided_at=timezone.now()
    )


def _orders_create(batch: Batch) -> None:
    """Insert the new orders, and queue their audit rows, requests and e-mails."""
    window = settings.HASHCART["CONFIRMATION_WINDOW_MINUTES"]
    codes = confirmation_codes_new(count=len(batch.new_orders))
    for (order, _), code in zip(batch.new_orders, codes, strict=True):
        order.confirmation_code = code
    Order.objects.bulk_create([order for order, _ in batch.new_orders])
    for order, post in batch.new_orders:
        prefix = order.campaign.confirm_prefix
        batch.events.append(
            event(
                order=order,
                kind="created",
                now=batch.now,
                to_status=OrderStatus.PENDING,
                data={"post": post.post_id},
            )
        )
        batch.reply(
            post,
            CONFIRMATION_REQUEST,
            messages.reply_confirmation_request(order=order, prefix=prefix, window_minutes=window),
            ReplyPriority.CONFIRMATION_REQUEST,
        )
        batch.emails.append(
            (
                order.cardholder_id,
                partial(order_created_email, order=order, prefix=prefix, window_minutes=window),
            )
        )
