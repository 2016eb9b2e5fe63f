"""Checks for /healthz beyond the database (django-health-check, DESIGN §10.1).

``Broker``: the Celery broker accepts a connection. ``FeedLag``: every enabled brand account's
mentions feed was read recently, and none of its feeds is stopped by a usage cap or failing
(a refused read is unhealthy at once). ``PaymentFailures``: no payment operation has failed for
good. Messages name no secret: no URL, no credentials, no platform error text.
"""

import dataclasses
import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from kombu import Connection


@dataclasses.dataclass
class Broker(HealthCheck):
    timeout = datetime.timedelta(seconds=5)

    def run(self) -> None:
        try:
            with Connection(
                settings.CELERY_BROKER_URL,
                transport_options=getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
                connect_timeout=3,
            ) as connection:
                connection.ensure_connection(max_retries=1, timeout=3)
        except Exception as exc:
            raise ServiceUnavailable("The Celery broker is unreachable.") from exc


@dataclasses.dataclass
class FeedLag(HealthCheck):
    """Unavailable when a mentions feed was last read longer ago than
    ``HASHCART["MAX_FEED_LAG_MINUTES"]`` (pending orders then expire by the lag floor, not the
    feed), or when any feed is stopped or failing (``FeedCursor.failing_since``)."""

    async def run(self) -> None:
        # thread_sensitive: the ORM runs on the request's own thread and connection.
        await sync_to_async(self._check, thread_sensitive=True)()

    def _check(self) -> None:
        from social.models import FeedCursor, FeedKind, PlatformAccount

        limit = timezone.now() - datetime.timedelta(
            minutes=settings.HASHCART["MAX_FEED_LAG_MINUTES"]
        )
        problems = []
        for account in PlatformAccount.objects.filter(enabled=True).order_by("id"):
            name = f"@{account.handle} ({account.platform})"
            cursors = {c.feed: c for c in FeedCursor.objects.filter(account=account)}
            mentions = cursors.get(FeedKind.MENTIONS)
            if any(c.stopped for c in cursors.values()):
                problems.append(f"{name} is stopped")
            elif failing := sorted(f for f, c in cursors.items() if c.failing_since is not None):
                problems.append(f"{name} is failing to read its {' and '.join(failing)} feed")
            elif mentions is None or mentions.polled_at is None or mentions.polled_at < limit:
                problems.append(f"{name} is not being read")
        if problems:
            raise ServiceUnavailable("Feeds: " + "; ".join(problems) + ".")


@dataclasses.dataclass
class PaymentFailures(HealthCheck):
    """Unavailable while any payment operation is ``failed`` (a capture, void or authorization
    given up or refused): money is not captured or a hold not released until ops retry it with
    ``retry_payments`` (DESIGN §5.5)."""

    async def run(self) -> None:
        await sync_to_async(self._check, thread_sensitive=True)()

    def _check(self) -> None:
        from orders.selectors import payment_operations_failed

        failed = payment_operations_failed(limit=6)
        if failed:
            shown = ", ".join(
                f"#{op.id} {op.operation} of order {op.order_id}" for op in failed[:5]
            )
            more = " and more" if len(failed) > 5 else ""
            raise ServiceUnavailable(
                f"Payment operations failed: {shown}{more} (run retry_payments)."
            )
