"""The e-mail outbox, the one channel of e-mails to cardholders: orders' and accounts' alike.

E-mails are rows (``Notification``) queued in the transaction of the change they tell about
(``email_queue``, once per key), then sent through Django's e-mail backend (console in
development) by ``notifications_send_due``: each claimed with a lease (``core.outbox``), sent
outside any transaction, and retried after a failure as ``HASHCART["OUTBOX"]["emails"]`` says.
"""

import logging
from datetime import datetime
from functools import partial

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Cardholder
from core import outbox
from core.redact import addresses_redacted
from orders.models import Notification, Order, OutboxStatus
from orders.services.common import PRIVATE_REQUEST, notification, order_private_window_open
from orders.services.reminders import REMINDER, reminder_still_due

logger = logging.getLogger(__name__)


def email_queue(
    *,
    key: str,
    cardholder: Cardholder,
    kind: str,
    message: tuple[str, str],
    order: Order | None = None,
    send_on_commit: bool = False,
    html: str = "",
) -> None:
    """Queue an e-mail (``message``: subject and body) to the cardholder's address, in the
    caller's transaction: once per ``key`` (unique), so a change made twice e-mails once.
    ``html``: an HTML alternative to the plain-text body, sent as a second part.

    ``send_on_commit``: also try to send it once the transaction commits, in this process,
    rather than wait for the next sweep (accounts' e-mails: a link, card or address change is
    told at once). A failure there is logged and left to the sweep's retries; the change stands.
    Also ``HASHCART["EMAIL_OUTBOX_HANDLER"]``, which accounts calls.
    """
    Notification.objects.bulk_create(
        [
            notification(
                key=key, cardholder=cardholder, kind=kind, message=message, order=order, html=html
            )
        ],
        ignore_conflicts=True,
    )
    if send_on_commit:
        transaction.on_commit(partial(_send_now, key=key))


def _send_now(*, key: str) -> None:
    try:
        pk = Notification.objects.filter(key=key).values_list("pk", flat=True).first()
        if pk is not None:
            notification_send(notification_id=pk, now=timezone.now())
    except Exception:  # committed already: say so loudly, the sweep sends it later
        logger.exception("e-mail %s: sending at once failed, left to the e-mail sweep", key)


# E-mails whose worth runs out within minutes: a reminder before a window closes, and a
# confirmation request sent privately (the buyer's window runs from its sending). They go first,
# so a backlog of others (a sold-out sale's waitlist e-mails) cannot make them late.
URGENT_KINDS = (REMINDER, PRIVATE_REQUEST)


def notifications_send_due(*, now: datetime, limit: int = 200) -> int:
    """Send due e-mails, the urgent kinds (``URGENT_KINDS``) first, then the others, each oldest
    first; returns how many were sent.

    First puts back in the queue the e-mails whose sender died while sending them (its lease
    lapsed). Each e-mail is then claimed by compare-and-set before sending, so two senders never
    send one twice (``notification_send``).
    """
    taken_back = outbox.reclaim(
        Notification.objects.all(),
        now=now,
        held=Q(status=OutboxStatus.PROCESSING),
        values={"status": OutboxStatus.PENDING},
    )
    for pk in taken_back:
        logger.warning("e-mail %s: its sender's claim lapsed, queued again", pk)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    pending = Notification.objects.filter(due, status=OutboxStatus.PENDING).order_by("id")
    urgent = list(pending.filter(kind__in=URGENT_KINDS).values_list("pk", flat=True)[:limit])
    others = pending.exclude(kind__in=URGENT_KINDS).values_list("pk", flat=True)
    sent = 0
    for pk in urgent + list(others[: limit - len(urgent)]):
        sent += notification_send(notification_id=pk, now=now)
    return sent


def notification_send(*, notification_id: int, now: datetime) -> bool:
    """Send one pending e-mail; True if this call sent it.

    Claimed first (``pending`` to ``processing``, an attempt counted, a lease of
    ``HASHCART["OUTBOX"]["emails"]``): False, sending nothing, if it is not pending or another
    sender holds it. An SMTP failure (``OSError``) queues it again after the policy's delay, or
    fails it after its last attempt (an ERROR line with its id). Every outcome is written only
    while the lease is still this sender's. A confirmation request sent privately opens its
    order's window as it is recorded sent, in the same transaction
    (``orders.services.common.order_private_window_open``).
    """
    policy = outbox.policy("emails")
    rows = Notification.objects.filter(pk=notification_id)
    lease = outbox.claim(
        rows,
        now=now,
        lease=policy.lease,
        free=Q(status=OutboxStatus.PENDING),
        held=Q(status=OutboxStatus.PROCESSING),
        values={
            "status": OutboxStatus.PROCESSING,
            "attempts": F("attempts") + 1,
            "updated_at": now,
        },
    )
    if lease is None:
        return False
    message = rows.get()
    if not reminder_still_due(message):
        # Its order was confirmed, cancelled or expired since it was queued: never sent.
        lease.release(rows, status=OutboxStatus.DONE, last_error="not sent: order not pending")
        return False
    email = EmailMultiAlternatives(
        message.subject, message.body, settings.DEFAULT_FROM_EMAIL, [message.to_email]
    )
    if message.html_body:
        email.attach_alternative(message.html_body, "text/html")
    try:
        email.send()
    except OSError as exc:
        failed = policy.exhausted(message.attempts)
        lease.release(
            rows,
            status=OutboxStatus.FAILED if failed else OutboxStatus.PENDING,
            next_attempt_at=policy.retry_at(attempts=message.attempts, now=now),
            # Never the address: a refusal quotes the recipient, and the order's timeline shows
            # this error to merchant staff (DESIGN §10.2).
            last_error=addresses_redacted(f"{type(exc).__name__}: {exc}")[:500],
        )
        if failed:
            logger.error(
                "e-mail %s (%s) failed after %s attempts: %s",
                message.pk,
                message.kind,
                message.attempts,
                addresses_redacted(str(exc)),
            )
        return False
    if message.kind != PRIVATE_REQUEST:
        lease.release(rows, status=OutboxStatus.DONE, sent_at=now)
        return True
    # A confirmation request sent privately: the buyer's window runs from now, the moment it
    # went out (read again: a sweep sends many), recorded with the e-mail or not at all.
    sent_at = timezone.now()
    with transaction.atomic():
        if lease.release(rows, status=OutboxStatus.DONE, sent_at=sent_at) and message.order_id:
            order_private_window_open(order_id=message.order_id, sent_at=sent_at)
    return True
