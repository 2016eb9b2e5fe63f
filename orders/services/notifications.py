"""Sending the e-mail outbox through Django's e-mail backend (console in development)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import F

from orders.models import Notification, OutboxStatus

MAX_ATTEMPTS = 5


def notifications_send_due(*, now: datetime, limit: int = 200) -> int:
    """Send pending e-mails, oldest first; returns how many were sent.

    Each is claimed by compare-and-set before sending, so two senders never send one twice; an
    SMTP failure puts it back for a later try, up to ``MAX_ATTEMPTS``.
    """
    # A sender that died after claiming gives its e-mails back after ten minutes.
    Notification.objects.filter(
        status=OutboxStatus.PROCESSING, updated_at__lt=now - timedelta(minutes=10)
    ).update(status=OutboxStatus.PENDING)
    sent = 0
    for pk in list(
        Notification.objects.filter(status=OutboxStatus.PENDING)
        .order_by("id")
        .values_list("pk", flat=True)[:limit]
    ):
        if not Notification.objects.filter(pk=pk, status=OutboxStatus.PENDING).update(
            status=OutboxStatus.PROCESSING, attempts=F("attempts") + 1, updated_at=now
        ):
            continue
        message = Notification.objects.get(pk=pk)
        try:
            send_mail(
                message.subject, message.body, settings.DEFAULT_FROM_EMAIL, [message.to_email]
            )
        except OSError as exc:
            status = (
                OutboxStatus.FAILED if message.attempts >= MAX_ATTEMPTS else OutboxStatus.PENDING
            )
            Notification.objects.filter(pk=pk).update(status=status, last_error=str(exc)[:500])
            continue
        Notification.objects.filter(pk=pk).update(status=OutboxStatus.DONE, sent_at=now)
        sent += 1
    return sent
