"""The Celery application and the beat schedule, defined here and nowhere else.

Every periodic job is also a management command (STYLE §8), so ops can run it by hand.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("hashcart")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# name -> {"task": task name, "schedule": seconds}. Each job is also a management command:
# poll_feeds, send_replies, expire_orders, process_posts (the recovery sweep's work).
BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "poll-feeds": {
        "task": "orders.feeds_poll",
        "schedule": float(os.environ.get("HASHCART_POLL_INTERVAL_SECONDS", "2")),
    },
    "send-replies": {"task": "orders.replies_send_all", "schedule": 5.0},
    "run-payments": {"task": "orders.payments_run", "schedule": 10.0},
    "send-emails": {"task": "orders.notifications_send", "schedule": 10.0},
    "expire-orders": {"task": "orders.orders_expire", "schedule": 15.0},
    "recover": {"task": "orders.recover", "schedule": 30.0},
}
app.conf.beat_schedule = BEAT_SCHEDULE
