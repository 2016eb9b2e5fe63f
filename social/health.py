"""The feeds' health check, run by /healthz (``HASHCART["HEALTH_CHECKS"]``)."""

import datetime

from django.conf import settings
from django.utils import timezone

from core.health import HealthReport
from social.models import FeedCursor, FeedKind, PlatformAccount


def feed_lag() -> HealthReport:
    """Not ok when an enabled brand account's mentions feed was last read longer ago than
    ``HASHCART["MAX_FEED_LAG_MINUTES"]`` (pending orders then expire by the lag floor, not the
    feed), or when any of its feeds is stopped by a usage cap or failing
    (``FeedCursor.failing_since``: a refused read is unhealthy at once)."""
    limit = timezone.now() - datetime.timedelta(minutes=settings.HASHCART["MAX_FEED_LAG_MINUTES"])
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
    detail = "Feeds: " + "; ".join(problems) + "." if problems else ""
    return HealthReport(name="FeedLag", ok=not problems, detail=detail)
