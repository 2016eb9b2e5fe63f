"""The Celery application and the beat schedule, defined here and nowhere else.

Every periodic job is also a management command (STYLE §8), so ops can run it by hand.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("hashcart")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# name -> {"task": dotted task name, "schedule": seconds or crontab}. The pipeline's poll, decide,
# send, authorize and expire jobs join this table as they are built.
BEAT_SCHEDULE: dict[str, dict[str, object]] = {}
app.conf.beat_schedule = BEAT_SCHEDULE
