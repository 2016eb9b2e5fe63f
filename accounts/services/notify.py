"""E-mails and audit rows about a cardholder's account (DESIGN §8: an e-mail on every link,
unlink, card and address change)."""

import logging
from datetime import datetime

from django.core.mail import send_mail
from django.db import transaction

from accounts.models import AccountEvent, Cardholder
from core.lengths import EMAIL_SUBJECT_MAX_LENGTH, fit

logger = logging.getLogger(__name__)


def account_event(
    *, cardholder: Cardholder, kind: str, summary: str, now: datetime, actor: str = "cardholder"
) -> AccountEvent:
    """Write one row of the cardholder's own audit log; a long ``summary`` (it may name a
    handle) is cut with an ellipsis."""
    return AccountEvent.objects.create(
        cardholder=cardholder,
        created_at=now,
        kind=kind,
        summary=fit(summary, AccountEvent._meta.get_field("summary").max_length or 0),
        actor_label=actor,
    )


def account_email(*, cardholder: Cardholder, subject: str, body: str) -> None:
    """E-mail the cardholder once the caller's transaction commits (never for a rolled-back
    change). A failure to send is logged, and the change stands: the audit log on the settings
    page shows it either way. A long subject (it may name a handle) is cut with an ellipsis."""
    to = cardholder.user.email

    def send() -> None:
        try:
            send_mail(fit(f"Hashcart: {subject}", EMAIL_SUBJECT_MAX_LENGTH), body, None, [to])
        except Exception:  # the change is committed; say so loudly, do not fail the request
            logger.exception("account e-mail to cardholder %s failed", cardholder.pk)

    transaction.on_commit(send)
