"""/healthz (django-health-check, DESIGN §10.1): the database, the Celery broker, and the apps'
own checks, named by dotted path in ``HASHCART["HEALTH_CHECKS"]`` (core knows no app).

An app's check is a function without arguments that returns a ``HealthReport``; it is shown
under the report's name. Messages name no secret: no URL, no credentials, no platform error text.
"""

import dataclasses
import datetime
from collections.abc import Iterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils.module_loading import import_string
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView
from kombu import Connection


@dataclasses.dataclass(frozen=True)
class HealthReport:
    """What an app's check found: ``name`` (shown on /healthz), ``ok``, and when not ok the
    ``detail`` an operator reads."""

    name: str
    ok: bool
    detail: str = ""


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
class AppCheck(HealthCheck):
    """Runs the app's check at ``path`` and is shown as ``<its report's name>()``."""

    path: str = dataclasses.field(repr=False)
    name: str = dataclasses.field(default="", init=False, repr=False)

    async def run(self) -> None:
        # thread_sensitive: the ORM runs on the request's own thread and connection.
        report: HealthReport = await sync_to_async(
            import_string(self.path), thread_sensitive=True
        )()
        self.name = report.name
        if not report.ok:
            raise ServiceUnavailable(report.detail)

    def __repr__(self) -> str:
        return f"{self.name or self.path.rsplit('.', 1)[-1]}()"


class HealthView(HealthCheckView):
    """The database and the broker, then each check of ``HASHCART["HEALTH_CHECKS"]``."""

    checks = ("health_check.checks.Database", "core.health.Broker")

    def get_checks(self) -> Iterator[HealthCheck]:
        yield from super().get_checks()
        for path in settings.HASHCART["HEALTH_CHECKS"]:
            yield AppCheck(path=path)
