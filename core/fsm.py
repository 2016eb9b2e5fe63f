"""Saving a django-fsm-2 transition, shared by orders and shipments (DESIGN §3.4)."""

from typing import Any

from django.db import models, transaction
from django_fsm import ConcurrentTransition, can_proceed


def transition_save(
    *, instance: models.Model, transition: str, fields: dict[str, Any] | None = None
) -> bool:
    """Run the declared ``transition`` of ``instance``, set ``fields``, and save by
    compare-and-set on the status (``ConcurrentTransitionMixin``).

    Returns False, changing nothing, if the instance is not in a source state of the transition
    (it already happened, or another one did) or left it since it was read (another worker won
    the race; the instance is then reloaded). A savepoint keeps a lost race from spoiling the
    caller's transaction.
    """
    method = getattr(instance, transition)
    if not can_proceed(method):
        return False
    method()
    for name, value in (fields or {}).items():
        setattr(instance, name, value)
    try:
        with transaction.atomic():
            instance.save(update_fields=["status", "updated_at", *(fields or {})])
    except ConcurrentTransition:
        instance.refresh_from_db()
        return False
    return True
