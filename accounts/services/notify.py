"""E-mails and audit rows about a cardholder's account (DESIGN §8: an e-mail on every link,
unlink, card and address change)."""

import uuid
from datetime import datetime

from django.conf import settings
from django.utils.module_loading import import_string

from accounts.models import AccountEvent, Cardholder
from core.lengths import EMAIL_SUBJECT_MAX_LENGTH, fit


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
    """Queue an e-mail to the cardholder in the caller's transaction (never for a rolled-back
    change), through the one e-mail outbox: ``HASHCART["EMAIL_OUTBOX_HANDLER"]`` (accounts does
    not import orders). It is sent once the transaction commits and, if sending fails, retried
    by the e-mail sweep; the change stands either way, and the audit log on the settings page
    shows it. A long subject (it may name a handle) is cut with an ellipsis."""
    queue = import_string(settings.HASHCART["EMAIL_OUTBOX_HANDLER"])
    queue(
        # Each account e-mail is its own: nothing repeats one, so its key is fresh.
        key=f"account:{uuid.uuid4().hex}",
        cardholder=cardholder,
        kind="account",
        message=(fit(f"Hashcart: {subject}", EMAIL_SUBJECT_MAX_LENGTH), body),
        send_on_commit=True,
    )
