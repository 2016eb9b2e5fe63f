"""Merchant alerts (issue 14, DESIGN §10.2): each merchant's alert settings, and every alert
raised, once per cause. Written by ``orders.services.alerts``."""

from datetime import time

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q


def _no_kinds_off() -> list[str]:
    return []


class AlertSettings(models.Model):
    """One merchant's choice of alerts (one row per merchant; none: the defaults).

    ``kinds_off`` lists the kinds turned off, so a kind added later (another part raising
    ``webhook_disabled``, say) is on until a merchant turns it off. ``recipients``: e-mail
    addresses, one a line (or comma-separated); empty: the merchant's active staff logins.
    """

    merchant = models.OneToOneField(
        "catalog.Merchant", on_delete=models.CASCADE, related_name="alert_settings"
    )
    kinds_off = models.JSONField(default=_no_kinds_off, blank=True)
    recipients = models.TextField(
        blank=True,
        help_text="E-mail addresses, one a line. Empty: every active staff login of the merchant.",
    )
    waitlist_threshold = models.PositiveIntegerField(
        default=20,
        validators=[MinValueValidator(1)],
        help_text="Alert once a campaign's waitlist holds more buyers than this.",
    )
    digest_time = models.TimeField(
        default=time(8, 0),
        help_text="When the daily digest of late shipments goes out, in the merchant's time zone.",
    )

    class Meta:
        verbose_name = "alert settings"
        verbose_name_plural = "alert settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(waitlist_threshold__gte=1), name="alert_settings_waitlist_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Alert settings of merchant {self.merchant_id}"


class Alert(models.Model):
    """An alert raised: once per (merchant, kind, cause), which the database enforces, so two
    sweeps (or a sweep and another part's ``alert_raise``) cannot raise one twice.

    ``cause`` is a stable key of what it is about (``campaign:7``, ``payment_op:42``,
    ``digest:2026-11-30``); ``subject_id`` the id of that thing where there is one (a campaign,
    a payment operation, an order, a dispute, a return), for the sweeps' "not yet alerted"
    look-ups. ``emails`` is how many e-mails were queued: 0 when the merchant had the kind off
    (recorded all the same, so turning it on later does not flood them with old causes) or a
    digest had nothing to tell. ``cleared_at``: a low-stock alert whose campaign's stock rose
    back above its threshold; the next crossing is a new cause.
    """

    merchant = models.ForeignKey(
        "catalog.Merchant", on_delete=models.CASCADE, related_name="alerts"
    )
    kind = models.CharField(max_length=32)
    cause = models.CharField(max_length=200)
    subject_id = models.BigIntegerField(null=True, blank=True)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    raised_at = models.DateTimeField()
    emails = models.PositiveSmallIntegerField(default=0)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "kind", "cause"], name="alert_once"),
        ]
        indexes = [
            models.Index(fields=["kind", "subject_id"], name="alert_kind_subject_idx"),
            models.Index(fields=["merchant", "-raised_at"], name="alert_merchant_idx"),
            # The low-stock alerts still standing: the sweep re-arms them when stock comes back.
            models.Index(
                fields=["subject_id"],
                condition=Q(kind="low_stock", cleared_at__isnull=True),
                name="alert_low_stock_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.cause} (merchant {self.merchant_id})"
