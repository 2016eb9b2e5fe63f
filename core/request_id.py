"""One id per request, in its log lines and in the Celery tasks it starts (DESIGN §10).

The id comes from the ``X-Request-ID`` header when a proxy set a sane one, else it is made
here; it is returned in the response's ``X-Request-ID``. A task published while handling the
request carries it in a message header, and the worker logs the task's lines under it.
"""

import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.http import HttpRequest, HttpResponse

request_id: ContextVar[str] = ContextVar("request_id", default="")
_SANE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
HEADER = "request_id"


def request_id_middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    def middleware(request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        token = request_id.set(given if _SANE.match(given) else uuid.uuid4().hex)
        try:
            response = get_response(request)
            response["X-Request-ID"] = request_id.get()
            return response
        finally:
            request_id.reset(token)

    return middleware


@before_task_publish.connect
def _carry(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Put the current request id on every task message published in its context."""
    current = request_id.get()
    if headers is not None and current and HEADER not in headers:
        headers[HEADER] = current


@task_prerun.connect
def _adopt(task: Any = None, **kwargs: Any) -> None:
    """In the worker: log the task's lines under the id of the request that started it."""
    carried = getattr(task.request, HEADER, None) if task is not None else None
    request_id.set(carried or "")


@task_postrun.connect
def _forget(**kwargs: Any) -> None:
    request_id.set("")
