"""The Celery application. Its beat schedule is ``CELERY_BEAT_SCHEDULE`` in
``config/settings/base.py``, the one place periodic jobs are defined (its intervals come from
the environment there). Every periodic job is also a management command (STYLE §8).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("hashcart")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Request ids travel from web requests into the tasks they start (signal handlers there).
import core.request_id  # noqa: E402, F401
