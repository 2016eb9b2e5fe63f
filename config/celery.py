"""The Celery application. Its beat schedule is ``CELERY_BEAT_SCHEDULE`` in
``config/settings/base.py``, the one place periodic jobs are defined (its intervals come from
the environment there). Every periodic job is also a management command (STYLE §8).
"""

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("hashcart")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _connections_tidy(sender: Any = None, **kwargs: Any) -> None:
    """Close the database connections that are past ``CONN_MAX_AGE`` or broken, around every
    task, as Django does around every request; the others are kept (``CELERY_DB_REUSE_MAX``).
    Not for a task run eagerly, inside its caller's transaction."""
    from django.db import close_old_connections

    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()


# Request ids travel from web requests into the tasks they start (signal handlers there).
import core.request_id  # noqa: E402, F401
