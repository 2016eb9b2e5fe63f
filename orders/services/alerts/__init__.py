"""Merchant alerts by e-mail (issue 14, DESIGN §10.2): each once per cause, never a storm.

An alert is a row (``Alert``), unique per (merchant, kind, cause): raising one twice, from two
sweeps at once or from a sweep and another part of Hashcart, records and e-mails it once. Its
e-mails go through the retried e-mail outbox (``Notification`` of kind ``STAFF_ALERT``, one per
recipient, sent by ``notifications_send_due``), queued in the same transaction as the row.

Recipients are the merchant's ``AlertSettings.recipients``, else its active staff logins: staff
addresses only. Alert texts name orders by their code and campaigns by their hashtag, never a
cardholder's e-mail or card.

The causes Hashcart watches itself are found by a periodic sweep (``alerts_sweep`` in
``orders.services.alerts.sweep``: the ``alerts_sweep`` beat task and management command).
"""

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from accounts.models import User
from core.lengths import EMAIL_SUBJECT_MAX_LENGTH, fit, fit_key
from orders.messages import site_url
from orders.models import STAFF_ALERT, Alert, AlertSettings, Notification

logger = logging.getLogger(__name__)

# The kinds a merchant may turn on or off on its settings page, with their labels. Other parts
# may raise further kinds (``webhook_disabled``); those are on unless listed in ``kinds_off``.
LOW_STOCK = "low_stock"
SOLD_OUT = "sold_out"
WAITLIST_DEMAND = "waitlist_demand"
PAYMENT_FAILED = "payment_failed"
AUTHORIZATION_LAPSE = "authorization_lapse"
LATE_SHIPMENTS = "late_shipments"
DISPUTE_OPENED = "dispute_opened"
RETURN_OPENED = "return_opened"
KINDS: dict[str, str] = {
    LOW_STOCK: "Low stock",
    SOLD_OUT: "Sold out",
    WAITLIST_DEMAND: "Waitlist demand above the threshold",
    PAYMENT_FAILED: "Failed capture or void",
    AUTHORIZATION_LAPSE: "Authorization will lapse before the label is bought",
    LATE_SHIPMENTS: "Late shipments (daily digest)",
    DISPUTE_OPENED: "Dispute opened",
    RETURN_OPENED: "Return opened",
    "webhook_disabled": "Webhook endpoint disabled",
}

# A sweep that finds more new causes of one kind for one merchant than this sends one e-mail
# listing them (the first this many), not one each: a flash sale's failures are not a storm.
DIGEST_LINES = 50


@dataclass(frozen=True)
class Cause:
    """What a sweep found: one alert to raise (``subject_id``: the id of the thing it is
    about, for the sweep's "not yet alerted" look-ups)."""

    merchant_id: int
    kind: str
    cause: str
    subject: str
    body: str
    subject_id: int | None = None
    # The payload of the webhook event the cause also is (campaign alerts), if any.
    event_data: Mapping[str, Any] | None = None


def alert_settings_of(merchant_id: int) -> AlertSettings:
    """The merchant's settings row, or an unsaved one with the defaults."""
    found = AlertSettings.objects.filter(merchant_id=merchant_id).first()
    return found if found is not None else AlertSettings(merchant_id=merchant_id)


def alert_kind_on(alert_settings: AlertSettings, kind: str) -> bool:
    return kind not in (alert_settings.kinds_off or [])


def recipients_parse(text: str) -> list[str]:
    """The addresses in ``text`` (one a line, or separated by commas or spaces), in order,
    each once. Raises ``ValidationError`` naming an address that is not one."""
    found: list[str] = []
    for address in re.split(r"[\s,;]+", text.strip()):
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(f"“{address}” is not an e-mail address.") from None
        if address.lower() not in (a.lower() for a in found):
            found.append(address)
    return found


def alert_recipients(alert_settings: AlertSettings) -> list[str]:
    """Who gets the merchant's alerts: its chosen addresses, else its active staff logins."""
    chosen = recipients_parse(alert_settings.recipients or "")
    if chosen:
        return chosen
    staff = (
        User.objects.filter(merchant_id=alert_settings.merchant_id, is_active=True, is_staff=True)
        .exclude(email="")
        .order_by("pk")
        .values_list("email", flat=True)
    )
    return list(dict.fromkeys(staff))


def admin_url(name: str, object_id: int) -> str:
    """The absolute URL of an admin change page, for an alert's body."""
    return site_url(name, object_id)


def alert_record(cause: Cause, *, now: datetime) -> Alert | None:
    """Record the alert, e-mailing nobody (the sweep's empty digest day; ``alerts_raise``
    e-mails). None if (merchant, kind, cause) is there already. A savepoint
    keeps the caller's transaction usable after the unique constraint refuses a second one
    (and a concurrent insert of the same cause waits for the first to commit, then refuses)."""
    try:
        with transaction.atomic():
            return Alert.objects.create(
                merchant_id=cause.merchant_id,
                kind=fit_key(cause.kind, Alert._meta.get_field("kind").max_length or 32),
                # A caller's long key is kept apart from others by its hash (``fit_key``).
                cause=fit_key(cause.cause, Alert._meta.get_field("cause").max_length or 200),
                subject_id=cause.subject_id,
                subject=fit(cause.subject, EMAIL_SUBJECT_MAX_LENGTH),
                body=cause.body,
                raised_at=now,
            )
    except IntegrityError:
        return None


def _emails_queue(*, alerts: Sequence[Alert], to: Sequence[str]) -> int:
    """Queue one e-mail per recipient telling ``alerts`` (all of one merchant and kind): the
    alert itself, or a digest listing them. Keyed by the first alert, so once."""
    if not alerts or not to:
        return 0
    first = alerts[0]
    if len(alerts) == 1:
        subject, body = first.subject, first.body
    else:
        label = KINDS.get(first.kind, first.kind)
        subject = f"{label}: {len(alerts)} alerts"
        shown = [f"- {alert.subject}" for alert in alerts[:DIGEST_LINES]]
        if len(alerts) > DIGEST_LINES:
            shown.append(f"… and {len(alerts) - DIGEST_LINES} more (see Alerts in the admin).")
        body = "\n".join([f"{label}:", "", *shown, ""])
    Notification.objects.bulk_create(
        [
            Notification(
                key=f"alert:{first.pk}:{n}",
                cardholder=None,
                kind=STAFF_ALERT,
                to_email=address,
                subject=fit(f"[Hashcart] {subject}", EMAIL_SUBJECT_MAX_LENGTH),
                body=body,
            )
            for n, address in enumerate(to)
        ],
        ignore_conflicts=True,
    )
    return len(to)


def alerts_raise(causes: Sequence[Cause], *, now: datetime) -> list[Alert]:
    """Raise ``causes`` (all of one merchant and kind) in the caller's transaction: record each
    not raised before, and, if the merchant has the kind on, e-mail the new ones, one e-mail
    per recipient (a digest when there are several). Returns the alerts recorded now (those of
    a kind turned off too: recorded unsent, so turning it on later sends no old causes)."""
    if not causes:
        return []
    merchant_id, kind = causes[0].merchant_id, causes[0].kind
    if any(c.merchant_id != merchant_id or c.kind != kind for c in causes):
        raise ValueError("alerts_raise takes causes of one merchant and kind")
    new = [alert for alert in (alert_record(c, now=now) for c in causes) if alert is not None]
    alert_settings = alert_settings_of(merchant_id)
    if new and alert_kind_on(alert_settings, kind):
        to = alert_recipients(alert_settings)
        if not to:
            logger.warning("alert %s of merchant %s: no recipients", kind, merchant_id)
        sent = _emails_queue(alerts=new, to=to)
        Alert.objects.filter(pk__in=[a.pk for a in new]).update(emails=sent)
        for alert in new:
            alert.emails = sent
    return new


def alert_raise(
    *, merchant_id: int, kind: str, cause: str, subject: str, body: str, now: datetime
) -> bool:
    """Raise alert ``kind`` (e.g. ``"webhook_disabled"``) for ``cause`` (a stable key, e.g. the
    endpoint's id) to the merchant's alert recipients, through the retried e-mail outbox, in the
    caller's transaction. True if raised now; False if this (merchant, kind, cause) was raised
    before or the merchant turned the kind off (then it is recorded, unsent, all the same).

    Texts must not carry a cardholder's e-mail or card (staff read them)."""
    raised = alerts_raise(
        [Cause(merchant_id=merchant_id, kind=kind, cause=cause, subject=subject, body=body)],
        now=now,
    )
    return bool(raised) and alert_kind_on(alert_settings_of(merchant_id), kind)


def alert_settings_save(*, alert_settings: AlertSettings, kinds_on: Sequence[str]) -> None:
    """Save a merchant's settings (from its settings page) with the kinds in ``kinds_on`` on:
    every other kind of ``KINDS`` off; kinds the page does not offer stay as they were.
    Recipients are stored one a line, checked (``recipients_parse``)."""
    alert_settings.recipients = "\n".join(recipients_parse(alert_settings.recipients or ""))
    unknown = [k for k in alert_settings.kinds_off or [] if k not in KINDS]
    alert_settings.kinds_off = [k for k in KINDS if k not in kinds_on] + unknown
    alert_settings.save()
