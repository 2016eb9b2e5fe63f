"""Which merchant's rows a user may see: one rule for the back office and the API.

Core knows no merchant model. It reads what the user carries: staff of a merchant have a
``merchant`` foreign key on the user model (``AUTH_USER_MODEL``), so ``user.merchant_id`` is the
merchant whose rows they see, and that field's related model is the merchant itself. Superusers
(operators) see every merchant's rows; a staff user with no merchant sees none.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import QuerySet

# The user's field naming their merchant, and the field by which merchant-owned rows name theirs.
MERCHANT_FIELD = "merchant"


def merchant_id_of(request: Any) -> int | None:
    """The merchant whose rows the request's user may see; ``None`` for superusers (who see
    all), and an id no row has for anyone else (a staff user without a merchant, or the API
    schema generator's anonymous request), so that they see nothing. ``request`` is Django's or
    DRF's."""
    user = request.user
    if user.is_authenticated and user.is_superuser:
        return None
    return getattr(user, f"{MERCHANT_FIELD}_id", None) or 0


def has_merchant_scope(request: Any) -> bool:
    """Whether the user sees any rows at all: an operator, or staff of a merchant."""
    user = request.user
    return bool(user.is_superuser or getattr(user, f"{MERCHANT_FIELD}_id", None))


def scope_to_merchant(
    queryset: QuerySet[Any], lookup: str, merchant_id: int | None
) -> QuerySet[Any]:
    """``queryset`` restricted to ``merchant_id`` through ``lookup`` (unchanged for ``None``)."""
    if merchant_id is None:
        return queryset
    return queryset.filter(**{lookup: merchant_id})


def merchant_model() -> type[models.Model] | None:
    """The merchant model: what the user model's ``merchant`` field points to (None if the
    user model has no such field)."""
    try:
        field = get_user_model()._meta.get_field(MERCHANT_FIELD)
    except FieldDoesNotExist:
        return None
    return field.related_model


def merchant_lookup_of(model: type[models.Model]) -> str | None:
    """How ``model``'s rows reach their merchant, or ``None`` if they belong to no merchant."""
    if model is merchant_model():
        return "pk"
    field_names = {field.name for field in model._meta.get_fields()}
    return MERCHANT_FIELD if MERCHANT_FIELD in field_names else None
