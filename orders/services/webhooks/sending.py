"""Sending webhook deliveries: the outbox sweep, signatures, backoff, disabling, sending again.

A sweep claims up to ``limit`` due deliveries at once (``core.outbox.claim``, with a token), signs
and POSTs them concurrently (``HASHCART["WEBHOOKS"]["SENDERS"]`` threads; no transaction is open
while the network is used), then writes every outcome in one transaction, each only while the
claim is still this sweep's. Any 2xx answer delivers; anything else (another status, a timeout,
a refused connection) is retried after the ``HASHCART["OUTBOX"]["webhooks"]`` delay (doubling
from seconds up to hours) until three days after the delivery was queued, then failed for good.

Every attempt carries the same ``webhook-id`` (the event's id), a fresh ``webhook-timestamp``
and ``webhook-signature`` (receivers refuse old timestamps), and the same body bytes.

An endpoint whose attempts all fail for ``HASHCART["WEBHOOKS"]["DISABLE_AFTER_HOURS"]`` (its
``failing_since``, cleared by any success) is disabled, its queued deliveries failed, and its
merchant alerted (``orders.services.alerts.alert_raise``, kind ``webhook_disabled``).
"""

import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from core import outbox
from core.exceptions import ApplicationError
from orders.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
)
from orders.models.webhooks import ERROR_MAX_LENGTH
from orders.services.alerts import alert_raise
from orders.services.webhooks.endpoints import webhook_endpoint_secrets, webhook_host_public

logger = logging.getLogger(__name__)

QUEUED, SENDING = WebhookDeliveryStatus.QUEUED, WebhookDeliveryStatus.SENDING
DELIVERED, FAILED = WebhookDeliveryStatus.DELIVERED, WebhookDeliveryStatus.FAILED
USER_AGENT = "Hashcart-Webhooks/1"


def _config() -> dict[str, Any]:
    return dict(settings.HASHCART["WEBHOOKS"])


@cache
def _pool(size: int) -> urllib3.PoolManager:
    """One connection pool per process (thread-safe), kept alive between sweeps."""
    return urllib3.PoolManager(maxsize=size, block=False, retries=False)


def webhook_headers(
    *, event_id: str, body: str, secrets: list[str], now: datetime
) -> dict[str, str]:
    """Standard Webhooks' headers for one attempt: ``webhook-id``, ``webhook-timestamp`` (``now``
    in whole seconds) and ``webhook-signature`` (one ``v1,`` signature per secret, space
    separated), made with the ``standardwebhooks`` library."""
    signatures = " ".join(
        Webhook(secret).sign(msg_id=event_id, timestamp=now, data=body) for secret in secrets
    )
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


@dataclass
class _Outcome:
    delivery: WebhookDelivery
    status_code: int | None = None
    error: str = ""
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _post(delivery: WebhookDelivery, now: datetime) -> _Outcome:
    """One attempt, outside any transaction; never raises for the network's failures."""
    endpoint, event = delivery.endpoint, delivery.event
    outcome = _Outcome(delivery=delivery)
    try:
        secrets = webhook_endpoint_secrets(endpoint=endpoint, now=now)
    except ValueError:
        # A key dropped before ``rotate_credentials`` ran: an operator's fix, so retry later
        # (and say why) rather than send unsigned or stop the sweep.
        logger.error("webhook endpoint %s: no configured key reads its secret", endpoint.pk)
        outcome.error = "Not sent: the signing secret cannot be read with the configured keys."
        return outcome
    headers = webhook_headers(event_id=event.event_id, body=event.body, secrets=secrets, now=now)
    config = _config()
    timeout = urllib3.Timeout(
        connect=config["CONNECT_TIMEOUT_SECONDS"], read=config["TIMEOUT_SECONDS"]
    )
    if config["REQUIRE_HTTPS"] and not webhook_host_public(urlsplit(endpoint.url).hostname or ""):
        outcome.error = "Not sent: the host does not resolve to a public address."
        return outcome
    started = time.monotonic()
    try:
        response = _pool(config["SENDERS"]).request(
            "POST",
            endpoint.url,
            body=event.body.encode(),
            headers=headers,
            timeout=timeout,
            redirect=False,
            preload_content=False,
        )
        try:
            outcome.status_code = response.status
            if not outcome.ok:
                outcome.error = f"HTTP {response.status}"
            response.drain_conn()
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX_LENGTH]
    outcome.duration_ms = round((time.monotonic() - started) * 1000)
    return outcome


@dataclass
class SendSummary:
    """What one sweep did: attempts made, delivered, queued again, failed for good, endpoints
    disabled."""

    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    disabled: list[int] = field(default_factory=list)


def webhook_deliveries_send_due(*, now: datetime, limit: int = 500) -> SendSummary:
    """Send the deliveries due at ``now`` (queued, ``next_attempt_at`` passed, endpoint enabled),
    oldest first, at most ``limit``; first takes back the ones whose sender died (lease lapsed).

    Two sweeps at once claim disjoint deliveries (compare-and-set); a sweep whose lease lapsed
    while it was sending writes nothing (the attempt is sent again by the next holder, with the
    same ``webhook-id``, which is why receivers dedupe on it).
    """
    policy = outbox.policy("webhooks")
    outbox.reclaim(
        WebhookDelivery.objects.all(),
        now=now,
        held=Q(status=SENDING),
        values={"status": QUEUED},
    )
    due = list(
        WebhookDelivery.objects.filter(
            status=QUEUED, next_attempt_at__lte=now, endpoint__enabled=True
        )
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    summary = SendSummary()
    if not due:
        return summary
    lease = outbox.claim(
        WebhookDelivery.objects.filter(pk__in=due),
        now=now,
        lease=policy.lease,
        token_field="claim_token",
        free=Q(status=QUEUED),
        held=Q(status=SENDING),
        values={"status": SENDING, "attempts": F("attempts") + 1},
    )
    if lease is None:
        return summary
    claimed = list(
        WebhookDelivery.objects.filter(claim_token=lease.token, status=SENDING).select_related(
            "event", "endpoint"
        )
    )
    senders = max(1, min(int(_config()["SENDERS"]), len(claimed)))
    if senders == 1:
        outcomes = [_post(delivery, now) for delivery in claimed]
    else:
        with ThreadPoolExecutor(max_workers=senders) as pool:
            outcomes = list(pool.map(lambda d: _post(d, now), claimed))
    with transaction.atomic():
        _outcomes_write(outcomes=outcomes, lease=lease, now=now, summary=summary, policy=policy)
    return summary


def _outcomes_write(
    *,
    outcomes: list[_Outcome],
    lease: outbox.Lease,
    now: datetime,
    summary: SendSummary,
    policy: outbox.Policy,
) -> None:
    WebhookAttempt.objects.bulk_create(
        [
            WebhookAttempt(
                delivery=o.delivery,
                attempted_at=now,
                status_code=o.status_code,
                error=o.error,
                duration_ms=o.duration_ms,
            )
            for o in outcomes
        ]
    )
    summary.attempted += len(outcomes)
    # Delivered: one UPDATE per status code (200, 204…), whatever the batch's size.
    by_code: dict[int | None, list[int]] = defaultdict(list)
    for o in outcomes:
        if o.ok:
            by_code[o.status_code].append(o.delivery.pk)
    for code, pks in by_code.items():
        summary.delivered += lease.release(
            WebhookDelivery.objects.filter(pk__in=pks),
            status=DELIVERED,
            delivered_at=now,
            last_status_code=code,
            last_error="",
        )
    for o in outcomes:
        if o.ok:
            continue
        delivery = o.delivery
        given_up = now >= delivery.give_up_at
        if lease.release(
            WebhookDelivery.objects.filter(pk=delivery.pk),
            status=FAILED if given_up else QUEUED,
            next_attempt_at=policy.retry_at(
                attempts=delivery.attempts, now=now, give_up_at=delivery.give_up_at
            ),
            last_status_code=o.status_code,
            last_error=o.error,
        ):
            if given_up:
                summary.failed += 1
                logger.warning(
                    "webhook delivery %s (%s) failed for good after %s attempts: %s",
                    delivery.pk,
                    delivery.event.event_id,
                    delivery.attempts,
                    o.error,
                )
            else:
                summary.retrying += 1
    _endpoints_health(outcomes=outcomes, now=now, summary=summary)


def _endpoints_health(*, outcomes: list[_Outcome], now: datetime, summary: SendSummary) -> None:
    """A success ends an endpoint's failing streak; a sweep of failures only starts one (or
    continues it); a streak as long as ``DISABLE_AFTER_HOURS`` disables the endpoint."""
    succeeded = {o.delivery.endpoint_id for o in outcomes if o.ok}
    failed = {o.delivery.endpoint_id for o in outcomes if not o.ok} - succeeded
    if succeeded:
        WebhookEndpoint.objects.filter(pk__in=succeeded, failing_since__isnull=False).update(
            failing_since=None
        )
    if not failed:
        return
    WebhookEndpoint.objects.filter(pk__in=failed, failing_since__isnull=True).update(
        failing_since=now
    )
    limit = now - timedelta(hours=_config()["DISABLE_AFTER_HOURS"])
    for endpoint in WebhookEndpoint.objects.filter(
        pk__in=failed, enabled=True, failing_since__lte=limit
    ):
        # In a savepoint: should disabling or alerting fail, the attempts are still recorded
        # (else they would be sent again at once) and the next failing sweep tries again.
        try:
            with transaction.atomic():
                disabled = webhook_endpoint_disable(endpoint=endpoint, now=now)
        except Exception:
            logger.exception("webhook endpoint %s: disabling it failed", endpoint.pk)
            continue
        if disabled:
            summary.disabled.append(endpoint.pk)


def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, now: datetime) -> bool:
    """Disable an endpoint that failed for days, in the caller's transaction: compare-and-set on
    ``enabled`` (once), its queued deliveries failed, its merchant alerted. True if this call
    disabled it."""
    since = endpoint.failing_since
    reason = f"Every delivery failed since {since:%Y-%m-%d %H:%M} UTC." if since else "Failing."
    if not WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_at=now, disabled_reason=reason
    ):
        return False
    WebhookDelivery.objects.filter(endpoint_id=endpoint.pk, status=QUEUED).update(
        status=FAILED, last_error="Not sent: the endpoint was disabled."
    )
    logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, reason)
    alert_raise(
        merchant_id=endpoint.merchant_id,
        kind="webhook_disabled",
        cause=str(endpoint.pk),
        subject=f"Webhook endpoint disabled: {endpoint.url}"[:200],
        body=(
            f"Hashcart stopped sending webhooks to {endpoint.url}. {reason}\n"
            "Fix the endpoint, enable it again in the back office (Webhook endpoints), and send "
            "the failed deliveries again from their page."
        ),
        now=now,
    )
    return True


def webhook_delivery_resend(*, delivery_id: int, now: datetime) -> None:
    """Queue a delivery again at once (staff's "send again"), whatever became of it: the same
    event, so the same ``webhook-id`` and body; three more days of retries from now. Raises
    ``ApplicationError`` if its endpoint is disabled (enable it first) or it is being sent."""
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    if not delivery.endpoint.enabled:
        raise ApplicationError("Its endpoint is disabled: enable the endpoint first.")
    give_up_at = outbox.policy("webhooks").give_up_at(now)
    if not (
        WebhookDelivery.objects.filter(pk=delivery_id)
        .exclude(status=SENDING)
        .update(
            status=QUEUED,
            attempts=0,
            next_attempt_at=now,
            give_up_at=give_up_at,
            claimed_until=None,
            claim_token="",
        )
    ):
        raise ApplicationError("It is being sent right now: try again in a minute.")


def webhooks_send_all(*, seconds: float, limit: int = 500) -> int:
    """Sweep after sweep (``webhook_deliveries_send_due``, the clock read for each) while they
    come back full, for at most ``seconds``; returns the attempts made. The beat's task and
    ``send_webhooks`` run this."""
    deadline = time.monotonic() + seconds
    attempted = 0
    while True:
        summary = webhook_deliveries_send_due(now=timezone.now(), limit=limit)
        attempted += summary.attempted
        if summary.attempted < limit or time.monotonic() >= deadline:
            return attempted
