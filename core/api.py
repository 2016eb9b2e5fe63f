"""What every API endpoint shares (DESIGN §10.3): staff token authentication, merchant scope,
cursor pagination, throttling, and one shape for every error:

    {"error": {"code": "validation_error", "message": "…", "fields": {"hashtag": ["…"]}}}
"""

from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404
from django_filters import rest_framework as filters
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication
from rest_framework import exceptions, permissions
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from core.exceptions import ApplicationError
from core.scoping import has_merchant_scope, merchant_id_of, scope_to_merchant


class HashedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>`` against django-rest-knox's digests, expired tokens
    refused. A key that is not UTF-8 is a 401 like any wrong key, not a server error."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        return super().authenticate_credentials(token)


class HashedTokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme of ``HashedTokenAuthentication`` (knox's, by subclass)."""

    target_class = "core.api.HashedTokenAuthentication"
    name = "tokenAuth"


class IsMerchantStaff(permissions.BasePermission):
    """Staff of a merchant, or an operator: the API acts for a merchant's back office."""

    message = "This token belongs to no merchant's staff."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(
            user and user.is_authenticated and user.is_staff and has_merchant_scope(request)
        )


class HasActionPermission(permissions.BasePermission):
    """The Django permission each action needs, from the view's ``action_permissions``
    (``{"list": "orders.view_order", "cancel": "orders.cancel_order", ...}``): a token can do
    through the API exactly what its login may do in the back office. An action not listed is
    refused."""

    message = "This login may not do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        needed = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        return isinstance(needed, str) and request.user.has_perm(needed)


def merchant_scope(request: Request) -> int | None:
    """The merchant whose rows the token may see; None for operators (all merchants), and an
    id no row has for anyone else (the schema generator's anonymous request, say). The back
    office's rule (``core.scoping.merchant_id_of``)."""
    return merchant_id_of(request)


class MerchantScopedMixin:
    """The view's ``queryset`` limited to the token's merchant through ``merchant_lookup``: a
    row of another merchant is a 404, through every endpoint, list, detail and action alike.
    Object ids in paths are numbers only."""

    merchant_lookup = "merchant_id"
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset()  # type: ignore[misc]
        merchant_id = merchant_scope(self.request)  # type: ignore[attr-defined]
        return scope_to_merchant(queryset, self.merchant_lookup, merchant_id)


# The range of a primary key (PostgreSQL bigint): a number outside it cannot name a row, and the
# database refuses to compare with it (a 500), so it is refused as input first.
ID_MIN, ID_MAX = -(2**63), 2**63 - 1


class NewestFirst(CursorPagination):
    """Cursor pages, newest first: constant cost however deep, at a million orders.

    A cursor is opaque but not signed: one that this API did not make (not base64, a position
    that is not an id, an offset or direction that is not a number) is a 400 naming the
    ``cursor`` field, never a 404 or a database error."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request: Request) -> Cursor | None:
        invalid = exceptions.ValidationError(
            {self.cursor_query_param: [self.invalid_cursor_message]}
        )
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            raise invalid from None
        if cursor is None or cursor.position is None:
            return cursor
        # The ordering is by id: a position is an id.
        try:
            position = int(cursor.position)
        except ValueError:
            raise invalid from None
        if not ID_MIN <= position <= ID_MAX:
            raise invalid
        return cursor


class IdFilter(filters.Filter):
    """A filter by a row's id: an integer within the id range, else a 400 naming the filter
    (``NumberFilter`` takes any decimal, and the database fails on one out of range)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", ID_MIN)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(*args, **kwargs)


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error in one shape. Business-rule refusals (``ApplicationError``) are 409; model
    validation errors from services are 400 like serializer errors."""
    if isinstance(exc, ApplicationError):
        return Response(error_body("conflict", exc.message), status=409)
    if isinstance(exc, DjangoValidationError):
        fields = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        exc = exceptions.ValidationError(fields)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    # Imported here: rest_framework.views imports this module's classes through the settings.
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = response.data
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        response.data = error_body("validation_error", "The request is not valid.", fields)
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        message = str(detail.get("detail", detail)) if isinstance(detail, dict) else str(detail)
        response.data = error_body(str(exc.default_code), message)
    return response


ERROR_STATUSES = {
    "400": "The request is not valid (``fields`` says why, per field).",
    "401": "No valid token.",
    "403": "The token may not do this.",
    "404": "Not found, or not your merchant's.",
    "409": "A business rule refused it (for example, the order can no longer be cancelled).",
    "429": "Too many requests: wait and retry.",
}


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: Any) -> dict:
    """drf-spectacular hook: every operation documents the error shape for the error statuses
    it can return, so that clients (and schemathesis) can rely on it."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "fields": {"type": "object", "additionalProperties": True},
                },
            }
        },
    }
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses.setdefault(status, {"description": description, "content": reference})
    return result
