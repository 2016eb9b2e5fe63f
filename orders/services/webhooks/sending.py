"""Sending webhook deliveries: the outbox sweep, signatures, backoff, disabling, sending again.

A sweep claims up to ``limit`` due deliveries at once (``core.outbox.claim``, with a token),
fairly: at most ``PER_ENDPOINT_PER_SWEEP`` of one endpoint, and a few of an endpoint that is
failing. It signs and POSTs them with ``HASHCART["WEBHOOKS"]["SENDERS"]`` threads, started
round-robin across endpoints (no transaction is open while the network is used), and writes the
outcomes as they come (every half second or so), each only while the claim is still this
sweep's. Every request ends within ``TIMEOUT_SECONDS`` however the receiver behaves, and a sweep
starts requests only while they can end well within its lease (``SWEEP_SECONDS``); an endpoint
that does not answer gets no further request in that sweep. So one merchant's dead or slow
endpoint costs the others at most one request deadline per sweep. Any 2xx answer delivers;
anything else (another status, a timeout, a refused connection) is retried after the
``HASHCART["OUTBOX"]["webhooks"]`` delay (doubling from seconds up to hours) until three days
after the delivery was queued, then failed for good.

The receiver is reached at an address checked once per attempt (``_post``: no DNS rebinding).

Every attempt carries the same ``webhook-id`` (the event's id), a fresh ``webhook-timestamp``
and ``webhook-signature`` (receivers refuse old timestamps), and the same body bytes.

An endpoint whose attempts all fail for ``HASHCART["WEBHOOKS"]["DISABLE_AFTER_HOURS"]`` (its
``failing_since``, cleared by any success) is disabled, its queued deliveries held (``held``:
sent when staff enable it again), and its merchant alerted
(``orders.services.alerts.alert_raise``, kind ``webhook_disabled``, once per disabling).
"""

import contextlib
import http.client
import logging
import socket
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook
from urllib3.connection import HTTPConnection, HTTPSConnection

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
from orders.services.webhooks.endpoints import (
    webhook_address_public,
    webhook_endpoint_secrets,
    webhook_host_resolve,
)

logger = logging.getLogger(__name__)

QUEUED, SENDING = WebhookDeliveryStatus.QUEUED, WebhookDeliveryStatus.SENDING
DELIVERED, FAILED = WebhookDeliveryStatus.DELIVERED, WebhookDeliveryStatus.FAILED
HELD = WebhookDeliveryStatus.HELD
USER_AGENT = "Hashcart-Webhooks/1"
# The most of an answer's body read (only to keep its connection for the next request): a
# receiver's reply says nothing we use beyond its status.
REPLY_MAX_BYTES = 4096
# Outcomes are written (and the endpoints' health updated) at least this often during a sweep,
# or every ``_FLUSH_OUTCOMES`` outcomes, whichever comes first.
_FLUSH_SECONDS = 0.5
_FLUSH_OUTCOMES = 200
# While senders are free and the last claim found nothing, the sweep claims again this often
# (deliveries come due as their retry delays pass, or are queued meanwhile).
_CLAIM_AGAIN_SECONDS = 0.2
# A failing endpoint (``failing_since`` set) gets at most this many deliveries per sweep, one at
# a time: it cannot tie up the senders, and one success lifts the limit.
_FAILING_PER_SWEEP = 4
LAPSED_ERROR = "No outcome recorded: the sweep sending it stopped (its lease lapsed)."


def _config() -> dict[str, Any]:
    return dict(settings.HASHCART["WEBHOOKS"])


# --- One request, to the address that was checked, within a hard deadline ---------------------
class _Watch:
    """A request's deadline: when it passes, the request's socket is shut down, which ends any
    read or write in progress (a receiver trickling its answer byte by byte included)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.expired = False

    def attach(self, sock: socket.socket | None) -> None:
        with self.lock:
            self.sock = sock
            if self.expired and sock is not None:
                _shut(sock)

    def detach(self) -> None:
        """The request is over: its connection may go back to the pool, out of reach."""
        with self.lock:
            self.sock = None

    def expire(self) -> None:
        with self.lock:
            self.expired = True
            if self.sock is not None:
                _shut(self.sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_current = threading.local()  # the sending thread's ``_Watch``


def _attach(sock: socket.socket | None) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None and sock is not None:
        watch.attach(sock)


class _WatchedHTTPConnection(HTTPConnection):
    """Hands its socket to the sending thread's ``_Watch``: on connecting (before the TLS
    handshake) and on each request over a kept-alive connection."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _attach(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _attach(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self.sock)
        super().request(*args, **kwargs)


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


@lru_cache(maxsize=1024)
def _pool(scheme: str, address: str, port: int, host: str, size: int) -> Any:
    """A connection pool to one checked ``address`` for the name ``host`` (thread-safe, kept
    alive between sweeps). HTTPS: SNI and the certificate's check are on ``host``, not on the
    address connected to."""
    if scheme == "https":
        return _HTTPSPool(
            address,
            port,
            maxsize=size,
            block=False,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            server_hostname=host,
            assert_hostname=host,
        )
    return _HTTPPool(address, port, maxsize=size, block=False, retries=False)


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
    """One attempt, outside any transaction; never raises for the network's failures.

    The host is resolved once and, with ``REQUIRE_HTTPS`` (production), every address it
    resolves to must be public; the request then goes to the first of those very addresses
    (``Host``, SNI and the certificate's check on the name), so a name that answers a public
    address to the check and a private one to the connection reaches nothing. The whole request
    (connecting, sending, the answer's head and at most ``REPLY_MAX_BYTES`` of its body) ends
    within ``TIMEOUT_SECONDS``, however slowly the receiver answers.
    """
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
    total = float(config["TIMEOUT_SECONDS"])
    timeout = urllib3.Timeout(
        connect=min(float(config["CONNECT_TIMEOUT_SECONDS"]), total), read=total
    )
    parts = urlsplit(endpoint.url)
    host = parts.hostname or ""
    default_port = 443 if parts.scheme == "https" else 80
    port = parts.port or default_port
    started = time.monotonic()
    addresses = webhook_host_resolve(host, port)
    if not addresses:
        outcome.error = "Not sent: the host does not resolve."
        return outcome
    if config["REQUIRE_HTTPS"] and not all(webhook_address_public(a) for a in addresses):
        outcome.error = "Not sent: the host does not resolve to a public address."
        return outcome
    named = f"[{host}]" if ":" in host else host
    headers["host"] = named if port == default_port else f"{named}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    pool = _pool(parts.scheme, addresses[0], port, host, int(config["SENDERS"]))
    watch = _Watch()
    _current.watch = watch
    timer = threading.Timer(total, watch.expire)
    timer.daemon = True
    timer.start()
    try:
        response = pool.urlopen(
            "POST",
            target,
            body=event.body.encode(),
            headers=headers,
            timeout=timeout,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        outcome.status_code = response.status
        if not outcome.ok:
            outcome.error = f"HTTP {response.status}"
        _reply_discard(response, watch)
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        if watch.expired:
            outcome.error = f"Timed out: no answer within {total:g} s."
        else:
            outcome.error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX_LENGTH]
    finally:
        timer.cancel()
        _current.watch = None
    outcome.duration_ms = round((time.monotonic() - started) * 1000)
    return outcome


def _reply_discard(response: Any, watch: _Watch) -> None:
    """Finish with an answer whose status was read: a body of a known length up to
    ``REPLY_MAX_BYTES`` is read (the connection is kept for the next request); any other
    (longer, of unknown length, chunked) is not read and its connection is closed."""
    try:
        length = response.length_remaining
        if length is not None and length <= REPLY_MAX_BYTES:
            response.read(REPLY_MAX_BYTES, decode_content=False)
            return
        response.close()
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError):
        response.close()
    finally:
        watch.detach()  # before another thread may take the connection from the pool
        response.release_conn()


@dataclass
class SendSummary:
    """What one sweep did: attempts made, delivered, queued again, failed for good, endpoints
    disabled; ``deferred``: deliveries it claimed but did not try (their endpoint stopped
    answering during the sweep, or the sweep's time was up), queued again as they were."""

    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    deferred: int = 0
    disabled: list[int] = field(default_factory=list)


def _sweep_seconds(policy: outbox.Policy) -> float:
    """How long a sweep starts new requests: ``SWEEP_SECONDS``, and never so long that the last
    request (``TIMEOUT_SECONDS`` at most) and the writes could outlast the lease."""
    config = _config()
    timeout = float(config["TIMEOUT_SECONDS"])
    return max(0.0, min(float(config["SWEEP_SECONDS"]), policy.lease_seconds - 2 * timeout))


def webhook_deliveries_send_due(
    *, now: datetime, limit: int = 500, seconds: float | None = None
) -> SendSummary:
    """Send the deliveries due at ``now`` (queued, ``next_attempt_at`` passed, endpoint
    enabled), at most ``limit`` per claim, fairly across endpoints; first takes back the ones
    whose sender died (lease lapsed), counting each as a failed attempt (retried after the
    backoff, so one that kills its sender is not taken again at once).

    Fair: a claim takes at most ``PER_ENDPOINT_PER_SWEEP`` deliveries of one endpoint
    (``_FAILING_PER_SWEEP`` of one whose attempts fail, sent one at a time), oldest first, and
    requests start round-robin across endpoints. An endpoint that does not answer (or answers
    slower than half ``TIMEOUT_SECONDS``) gets no new request in this sweep. While senders are
    free the sweep claims again (the clock moved on by the time elapsed), so a request waiting
    on a dead endpoint does not idle the others. It starts requests for at most ``seconds``
    (and ``_sweep_seconds``, which keeps every request within its claim's lease); whatever it
    claimed but did not try is queued again as it was. Outcomes are written as they come,
    every ``_FLUSH_SECONDS`` or so.

    Two sweeps at once claim disjoint deliveries (compare-and-set); a sweep whose lease lapsed
    while it was sending writes nothing (the attempt is sent again by the next holder, with the
    same ``webhook-id``, which is why receivers dedupe on it).
    """
    policy = outbox.policy("webhooks")
    summary = SendSummary()
    _lapsed_requeue(now=now, policy=policy, summary=summary)
    budget = _sweep_seconds(policy) if seconds is None else min(seconds, _sweep_seconds(policy))
    _Sweep(now=now, limit=limit, budget=budget, policy=policy, summary=summary).run()
    return summary


@dataclass
class _Claim:
    """Deliveries claimed together: their lease and the sweep's clock when claimed."""

    lease: outbox.Lease
    now: datetime


def _due(*, now: datetime, limit: int, per_endpoint: int, skip: set[int]) -> list[int]:
    """The ids of at most ``limit`` due deliveries, oldest first, at most ``per_endpoint`` of
    one endpoint (``_FAILING_PER_SWEEP`` of a failing one), none of the endpoints in ``skip``:
    one index probe per enabled endpoint (``webhookdelivery_ep_due_idx``), so a backlog of one
    endpoint, however long, is neither read whole nor allowed to crowd the others out."""
    deliveries, endpoints = WebhookDelivery._meta.db_table, WebhookEndpoint._meta.db_table
    sql = f"""
        SELECT due.id FROM {endpoints} AS e
        CROSS JOIN LATERAL (
            SELECT d.id, d.next_attempt_at FROM {deliveries} AS d
            WHERE d.endpoint_id = e.id AND d.status = %s AND d.next_attempt_at <= %s
            ORDER BY d.next_attempt_at, d.id
            LIMIT CASE WHEN e.failing_since IS NULL THEN %s ELSE %s END
        ) AS due
        WHERE e.enabled AND NOT (e.id = ANY(%s))
        ORDER BY due.next_attempt_at, due.id
        LIMIT %s
    """  # noqa: S608 (table names from the models; every value a parameter)
    with connection.cursor() as cursor:
        values: list[Any] = [QUEUED.value, now, per_endpoint, _FAILING_PER_SWEEP]
        values += [sorted(skip), limit]
        cursor.execute(sql, values)
        return [row[0] for row in cursor.fetchall()]


def _lapsed_requeue(*, now: datetime, policy: outbox.Policy, summary: SendSummary) -> None:
    """Take back the deliveries whose sweep died before writing their outcome (lease lapsed):
    each is a failed attempt (recorded, retried after the backoff, failed for good past its
    ``give_up_at``), so a delivery that kills its sender waits rather than being taken again
    at once and every time."""
    held = Q(status=SENDING)
    lapsed = WebhookDelivery.objects.filter(held, claimed_until__lt=now)
    for pk, until, attempts, give_up_at in lapsed.order_by("pk").values_list(
        "pk", "claimed_until", "attempts", "give_up_at"
    ):
        given_up = now >= give_up_at
        if until is None:  # the filter says otherwise; for the type checker
            continue
        with transaction.atomic():
            taken = outbox.Lease(field="claimed_until", until=until, held=held).release(
                WebhookDelivery.objects.filter(pk=pk),
                claim_token="",
                status=FAILED if given_up else QUEUED,
                next_attempt_at=policy.retry_at(
                    attempts=max(1, attempts), now=now, give_up_at=give_up_at
                ),
                last_status_code=None,
                last_error=LAPSED_ERROR,
            )
            if not taken:
                continue
            WebhookAttempt.objects.create(delivery_id=pk, attempted_at=now, error=LAPSED_ERROR)
        if given_up:
            summary.failed += 1
        else:
            summary.retrying += 1
        logger.warning("webhook delivery %s: its sweep stopped; retried later", pk)


class _Sweep:
    """One sweep's sending (see ``webhook_deliveries_send_due``): ``SENDERS`` threads POST,
    started round-robin across endpoints by the main thread, which alone uses the database
    (claims and outcomes)."""

    def __init__(
        self,
        *,
        now: datetime,
        limit: int,
        budget: float,
        policy: outbox.Policy,
        summary: SendSummary,
    ) -> None:
        config = _config()
        self.now, self.limit, self.policy, self.summary = now, limit, policy, summary
        self.senders = max(1, int(config["SENDERS"]))
        self.per_endpoint = int(config["PER_ENDPOINT_PER_SWEEP"])
        self.slow_ms = float(config["TIMEOUT_SECONDS"]) * 500  # half the deadline, in ms
        self.started = time.monotonic()
        self.deadline = self.started + budget
        self.queues: dict[int, deque[tuple[WebhookDelivery, _Claim]]] = defaultdict(deque)
        self.turn: deque[int] = deque()  # endpoints, in the order of their oldest delivery
        self.at_once: dict[int, int] = {}
        self.in_flight: dict[int, int] = defaultdict(int)
        self.answered: dict[int, int] = defaultdict(int)  # answers in time, this sweep
        self.stopped: set[int] = set()  # endpoints given no new request in this sweep
        self.running: dict[Future[_Outcome], tuple[WebhookDelivery, _Claim]] = {}
        self.done: list[tuple[_Outcome, _Claim]] = []
        self.flushed_at = self.claimed_at = self.started
        self.claim_found = False

    def clock(self) -> datetime:
        """The sweep's ``now`` moved on by the time elapsed (tests pass a ``now`` of their own)."""
        return self.now + timedelta(seconds=time.monotonic() - self.started)

    def claim(self, now: datetime) -> bool:
        """Claim the deliveries due at ``now`` (none of an endpoint stopped or with some already
        waiting here); True if any."""
        self.claimed_at = time.monotonic()
        self.claim_found = False  # until this claim takes some: then at once again if need be
        skip = self.stopped | {pk for pk, queue in self.queues.items() if queue}
        due = _due(now=now, limit=self.limit, per_endpoint=self.per_endpoint, skip=skip)
        if not due:
            return False
        lease = outbox.claim(
            WebhookDelivery.objects.filter(pk__in=due),
            now=now,
            lease=self.policy.lease,
            token_field="claim_token",
            free=Q(status=QUEUED),
            held=Q(status=SENDING),
            values={"status": SENDING, "attempts": F("attempts") + 1},
        )
        if lease is None:
            return False
        batch = _Claim(lease=lease, now=now)
        self.claim_found = True
        for delivery in (
            WebhookDelivery.objects.filter(claim_token=lease.token, status=SENDING)
            .select_related("event", "endpoint")
            .order_by("next_attempt_at", "id")
        ):
            pk = delivery.endpoint_id
            if pk not in self.at_once:
                self.turn.append(pk)
            self.at_once[pk] = 1 if delivery.endpoint.failing_since else self.senders
            self.queues[pk].append((delivery, batch))
        return True

    def next_delivery(self) -> tuple[WebhookDelivery, _Claim] | None:
        for _ in range(len(self.turn)):
            pk = self.turn[0]
            self.turn.rotate(-1)
            # Slow start: two requests at once to an endpoint, one more per answer it gave in
            # time, so an endpoint that stopped answering holds two senders, not all of them.
            limit = min(self.at_once[pk], 2 + self.answered[pk])
            if pk not in self.stopped and self.queues[pk] and self.in_flight[pk] < limit:
                return self.queues[pk].popleft()
        return None

    def flush(self) -> None:
        """Write the outcomes so far, one transaction per claim."""
        by_claim: dict[int, tuple[_Claim, list[_Outcome]]] = {}
        for outcome, batch in self.done:
            by_claim.setdefault(id(batch), (batch, []))[1].append(outcome)
        for batch, outcomes in by_claim.values():
            with transaction.atomic():
                _outcomes_write(
                    outcomes=outcomes,
                    lease=batch.lease,
                    now=batch.now,
                    summary=self.summary,
                    policy=self.policy,
                )
        self.stopped.update(self.summary.disabled)
        self.done.clear()
        self.flushed_at = time.monotonic()

    def run(self) -> None:
        if not self.claim(self.now):
            return
        with ThreadPoolExecutor(max_workers=self.senders) as pool:
            while True:
                while len(self.running) < self.senders and time.monotonic() < self.deadline:
                    chosen = self.next_delivery()
                    since_claim = time.monotonic() - self.claimed_at
                    if chosen is None and (self.claim_found or since_claim >= _CLAIM_AGAIN_SECONDS):
                        chosen = self.next_delivery() if self.claim(self.clock()) else None
                    if chosen is None:
                        break
                    self.in_flight[chosen[0].endpoint_id] += 1
                    self.running[pool.submit(_post, chosen[0], chosen[1].now)] = chosen
                if not self.running:
                    break
                finished, _ = wait(
                    self.running, timeout=_CLAIM_AGAIN_SECONDS, return_when=FIRST_COMPLETED
                )
                for future in finished:
                    delivery, batch = self.running.pop(future)
                    self.in_flight[delivery.endpoint_id] -= 1
                    outcome = future.result()
                    if outcome.status_code is None or outcome.duration_ms >= self.slow_ms:
                        self.stopped.add(delivery.endpoint_id)
                    else:
                        self.answered[delivery.endpoint_id] += 1
                    self.done.append((outcome, batch))
                if (
                    len(self.done) >= _FLUSH_OUTCOMES
                    or time.monotonic() - self.flushed_at >= _FLUSH_SECONDS
                ):
                    self.flush()
            self.flush()
        self.release_untried()
        if self.summary.disabled:
            # Retries written after its disabling: held with the rest.
            WebhookDelivery.objects.filter(
                endpoint_id__in=self.summary.disabled, status=QUEUED
            ).update(status=HELD, last_error="Held: the endpoint was disabled.")

    def release_untried(self) -> None:
        """Queue again, as they were, the deliveries claimed but not tried."""
        by_claim: dict[int, tuple[_Claim, list[int]]] = {}
        for queue in self.queues.values():
            for delivery, batch in queue:
                by_claim.setdefault(id(batch), (batch, []))[1].append(delivery.pk)
        for batch, pks in by_claim.values():
            self.summary.deferred += batch.lease.release(
                WebhookDelivery.objects.filter(pk__in=pks),
                status=QUEUED,
                attempts=F("attempts") - 1,
            )


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
    ``enabled`` (once), its queued deliveries held (sent when it is enabled again), its
    merchant alerted, once per disabling (the alert's cause is the endpoint and the time it was
    disabled). True if this call disabled it."""
    since = endpoint.failing_since
    reason = f"Every delivery failed since {since:%Y-%m-%d %H:%M} UTC." if since else "Failing."
    if not WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_at=now, disabled_reason=reason
    ):
        return False
    held = WebhookDelivery.objects.filter(endpoint_id=endpoint.pk, status=QUEUED).update(
        status=HELD, last_error="Held: the endpoint was disabled."
    )
    logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, reason)
    alert_raise(
        merchant_id=endpoint.merchant_id,
        kind="webhook_disabled",
        cause=f"{endpoint.pk}:{now:%Y%m%dT%H%M%S}",
        subject=f"Webhook endpoint disabled: {endpoint.url}"[:200],
        body=(
            f"Hashcart stopped sending webhooks to {endpoint.url}. {reason}\n"
            f"Its {held} queued deliveries, and every event from now on, are held for it. Fix "
            "the endpoint and enable it again in the back office (Webhook endpoints): what was "
            "held is sent then, in order. Deliveries that had already failed for good can be "
            "sent again from their page."
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
    find work, starting requests for at most ``seconds`` in all (so the last sweep ends within
    ``TIMEOUT_SECONDS`` and a flush after that); returns the attempts made. The beat's task and
    ``send_webhooks`` run this."""
    deadline = time.monotonic() + seconds
    attempted = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return attempted
        summary = webhook_deliveries_send_due(now=timezone.now(), limit=limit, seconds=left)
        attempted += summary.attempted
        if not summary.attempted:
            return attempted
