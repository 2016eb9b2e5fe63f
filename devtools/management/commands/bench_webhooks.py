"""``bench_webhooks``: 10,000 webhook events through the real outbox to a local receiver that
fails 30 % of requests at random, verifies every signature with ``standardwebhooks`` and dedupes
on ``webhook-id``.

The receiver is a threaded HTTP server inside this command. It answers 500 to a random 30 % of
requests (before looking at them), else verifies the signature (a bad one is a 400 and counted)
and acknowledges with 200. It counts: distinct ids acknowledged ("deliveries seen"), requests
for an id it had already acknowledged ("duplicates": a second delivery of one event, which must
stay 0), and requests for an id it had refused before ("retries", expected: the 30 %).

The events are recorded with ``webhook_events_record`` (the path order events take), for one
merchant with one endpoint, in transactions of 500; then ``webhook_deliveries_send_due`` runs
sweep after sweep until nothing is queued. The retry delays are shortened for the run
(``--first-delay``, ``--max-delay``: seconds) so that the backoff does not dominate the clock;
everything else is the production code path. The merchant and its rows are deleted at the end.

``--dead N``: a second merchant's endpoint, one that accepts connections and never answers, has
N deliveries queued before the bench's (older, so first in line), to show that it does not hold
the first merchant's 10,000 back: they must still be delivered exactly once within the minute.
"""

import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from catalog.models import Merchant
from orders.models import WebhookDelivery, WebhookDeliveryStatus
from orders.services.webhooks import (
    webhook_deliveries_send_due,
    webhook_endpoint_create,
    webhook_endpoint_secret,
    webhook_events_record,
)
from orders.services.webhooks.events import EventDraft


class Receiver:
    """The local endpoint and its counters (see the module)."""

    def __init__(self, *, secret: str, failure_rate: float, seed: int) -> None:
        self.webhook = Webhook(secret)
        self.failure_rate = failure_rate
        self.random = random.Random(seed)  # noqa: S311 (failures to inject, not secrets)
        self.lock = threading.Lock()
        self.acknowledged: set[str] = set()
        self.refused: set[str] = set()
        self.requests = self.duplicates = self.retries = self.failed = self.bad = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the sender's pool reuses connections

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._answer(receiver.receive(dict(self.headers.items()), body))

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        message_id = headers.get("webhook-id", "")
        with self.lock:
            self.requests += 1
            if message_id in self.refused:
                self.retries += 1
            if self.random.random() < self.failure_rate:
                self.failed += 1
                self.refused.add(message_id)
                return 500
        try:
            self.webhook.verify(body, headers)
        except WebhookVerificationError:
            with self.lock:
                self.bad += 1
            return 400
        with self.lock:
            if message_id in self.acknowledged:
                self.duplicates += 1
            self.acknowledged.add(message_id)
        return 200

    @contextmanager
    def serving(self) -> Iterator["Receiver"]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


class Command(BaseCommand):
    help = (
        "Send N webhook events (10,000) through the outbox to a local receiver failing 30 %% "
        "of requests; print deliveries and duplicates seen by the receiver, and wall time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--events", type=int, default=10_000)
        parser.add_argument("--failure-rate", type=float, default=0.3)
        parser.add_argument("--seed", type=int, default=14)
        parser.add_argument("--senders", type=int, default=16, help="Requests at once (16).")
        parser.add_argument("--batch", type=int, default=500, help="Deliveries per sweep.")
        parser.add_argument("--first-delay", type=float, default=0.05)
        parser.add_argument("--max-delay", type=float, default=1.0)
        parser.add_argument("--timeout", type=float, default=120.0, help="Give up after (s).")
        parser.add_argument(
            "--dead",
            type=int,
            default=0,
            help="Deliveries queued first for another merchant's endpoint that never answers.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        outbox = {
            **settings.HASHCART["OUTBOX"],
            "webhooks": {
                **settings.HASHCART["OUTBOX"]["webhooks"],
                "first_delay_seconds": options["first_delay"],
                "max_delay_seconds": options["max_delay"],
            },
        }
        hashcart = {
            **settings.HASHCART,
            "OUTBOX": outbox,
            "WEBHOOKS": {**settings.HASHCART["WEBHOOKS"], "SENDERS": options["senders"]},
        }
        with override_settings(HASHCART=hashcart):
            self._run(options)

    def _run(self, options: dict[str, Any]) -> None:
        slug = f"bench-webhooks-{uuid.uuid4().hex[:8]}"
        merchant = Merchant.objects.create(name="Webhook bench", slug=slug)
        dead = Merchant.objects.create(name="Webhook bench (dead)", slug=f"{slug}-dead")
        hole = socket.socket()  # accepts connections (the backlog), never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(1024)
        try:
            if options["dead"]:
                self._dead(dead, hole, options["dead"])
            self._bench(merchant, options)
            if options["dead"]:
                tried = WebhookDelivery.objects.filter(merchant=dead).exclude(attempts=0).count()
                self.stdout.write(
                    f"dead endpoint (other merchant): {options['dead']} queued first, "
                    f"{tried} tried meanwhile, none answered"
                )
        finally:
            hole.close()
            merchant.delete()  # its endpoint, events, deliveries and attempts with it
            dead.delete()

    def _dead(self, merchant: Merchant, hole: socket.socket, count: int) -> None:
        port = hole.getsockname()[1]
        webhook_endpoint_create(
            merchant_id=merchant.pk, url=f"http://127.0.0.1:{port}/h", events=["campaign.low_stock"]
        )
        earlier = timezone.now() - timedelta(seconds=1)
        drafts = [
            EventDraft(
                merchant_id=merchant.pk,
                type="campaign.low_stock",
                key=f"bench-dead:{n}",
                occurred_at=earlier,
                data=lambda n=n: {"campaign": {"id": n}},  # type: ignore[misc]
            )
            for n in range(count)
        ]
        with transaction.atomic():
            webhook_events_record(drafts=drafts, now=earlier)

    def _bench(self, merchant: Merchant, options: dict[str, Any]) -> None:
        count = options["events"]
        receiver = Receiver(
            secret="whsec_" + "A" * 44, failure_rate=options["failure_rate"], seed=options["seed"]
        )
        endpoint = webhook_endpoint_create(
            merchant_id=merchant.pk, url=receiver.url, events=["campaign.low_stock"]
        )
        receiver.webhook = Webhook(webhook_endpoint_secret(endpoint=endpoint))
        started = time.monotonic()
        now = timezone.now()
        for start in range(0, count, 500):
            drafts = [
                EventDraft(
                    merchant_id=merchant.pk,
                    type="campaign.low_stock",
                    key=f"bench:{n}",
                    occurred_at=now,
                    data=lambda n=n: {"campaign": {"id": n, "hashtag": f"Bench{n}"}},  # type: ignore[misc]
                )
                for n in range(start, min(start + 500, count))
            ]
            with transaction.atomic():
                webhook_events_record(drafts=drafts, now=now)
        recorded = time.monotonic() - started
        self.stdout.write(f"recorded {count} events in {recorded:.1f} s")
        rows = WebhookDelivery.objects.filter(merchant=merchant)
        attempts = sweeps = 0
        with receiver.serving():
            started = time.monotonic()
            deadline = started + options["timeout"]
            while time.monotonic() < deadline:
                summary = _sweep(options["batch"])
                attempts += summary
                sweeps += 1
                if not rows.exclude(status=WebhookDeliveryStatus.DELIVERED).exists():
                    break
                if not summary:
                    time.sleep(0.02)
            wall = time.monotonic() - started
        delivered = rows.filter(status=WebhookDeliveryStatus.DELIVERED).count()
        self.stdout.write(
            f"events: {count}\n"
            f"deliveries delivered (sender): {delivered}\n"
            f"attempts: {attempts} in {sweeps} sweeps\n"
            f"receiver: requests {receiver.requests}, refused at random {receiver.failed}, "
            f"bad signatures {receiver.bad}\n"
            f"receiver: deliveries seen (distinct webhook-id acknowledged) "
            f"{len(receiver.acknowledged)}\n"
            f"receiver: duplicates (an acknowledged id again) {receiver.duplicates}\n"
            f"receiver: retries (an id refused before) {receiver.retries}\n"
            f"wall time (sending): {wall:.1f} s ({count / wall:.0f} events/s)"
        )
        ok = (
            len(receiver.acknowledged) == count == delivered
            and receiver.duplicates == 0
            and receiver.bad == 0
        )
        verdict = "OK" if ok and wall < 60 else "FAILED"
        self.stdout.write(
            f"{verdict}: all delivered exactly once as the receiver saw them"
            if ok
            else f"{verdict}: see the counts above"
        )


def _sweep(limit: int) -> int:
    return webhook_deliveries_send_due(now=timezone.now(), limit=limit).attempted
