"""Merchants' webhook endpoints: created, changed, enabled again, and their secrets rotated.

A secret is Standard Webhooks' ``whsec_`` and 32 random bytes in base64. Rotating it keeps the
old one for ``HASHCART["WEBHOOKS"]["SECRET_OVERLAP_HOURS"]``: deliveries meanwhile carry two
signatures (``webhook-signature: v1,<new> v1,<old>``, as the specification allows), so a
receiver verifies with either secret and may switch whenever it likes within the overlap.
Secrets are stored encrypted (``core.crypto``): ``webhook_endpoint_secrets`` decrypts them to
sign, ``webhook_endpoint_secret`` to show the current one to its merchant.
"""

import base64
import ipaddress
import secrets
import socket
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from core.crypto import text_decrypt, text_encrypt
from orders.models import SUBSCRIPTIONS, WebhookEndpoint

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def _config() -> dict[str, Any]:
    return dict(settings.HASHCART["WEBHOOKS"])


def webhook_secret_new() -> str:
    """A fresh signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def webhook_url_validate(url: str) -> None:
    """Raise ``ValidationError`` (on ``url``) unless ``url`` is an http(s) address with a host,
    no user name or password in it (a credential in a URL ends up in logs and in the admin) and
    no fragment; https only when ``HASHCART["WEBHOOKS"]["REQUIRE_HTTPS"]`` (production), where
    loopback, private and link-local addresses and ``localhost`` are refused too (a merchant's
    endpoint must not reach inside our network)."""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError({"url": "Enter an http or https address."}) from None
    parts = urlsplit(url)
    if parts.username or parts.password or "@" in parts.netloc:
        raise ValidationError(
            {
                "url": "No user name or password in the URL: authenticate the request by its "
                "signature (webhook-signature) instead."
            }
        )
    if parts.fragment:
        raise ValidationError({"url": "No fragment (#…) in the URL."})
    if not _config()["REQUIRE_HTTPS"]:
        return
    if parts.scheme != "https":
        raise ValidationError({"url": "The URL must start with https://."})
    host = (parts.hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        raise ValidationError({"url": "The URL must be a public address."})
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if not address.is_global:
        raise ValidationError({"url": "The URL must be a public address."})


def webhook_host_public(host: str) -> bool:
    """Whether every address ``host`` resolves to now is public (not loopback, private,
    link-local like a cloud's metadata service, or reserved). Checked before each request where
    ``REQUIRE_HTTPS`` holds, as a name that passed ``webhook_url_validate`` may later resolve
    inside our network. False when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(str(address).split("%", 1)[0]).is_global for address in addresses
    )


def webhook_events_validate(events: list[str]) -> list[str]:
    """The subscription ``events``, de-duplicated in ``SUBSCRIPTIONS`` order; raises
    ``ValidationError`` (on ``events``) if it is empty or names an unknown event."""
    unknown = sorted(set(events) - set(SUBSCRIPTIONS))
    if unknown:
        raise ValidationError({"events": f"Unknown events: {', '.join(unknown)}."})
    if not events:
        raise ValidationError({"events": "Choose at least one event."})
    return [name for name in SUBSCRIPTIONS if name in events]


def webhook_endpoint_create(
    *, merchant_id: int, url: str, events: list[str], description: str = ""
) -> WebhookEndpoint:
    """A new enabled endpoint of the merchant with a fresh secret. Raises ``ValidationError``
    for a refused URL or subscription."""
    webhook_url_validate(url)
    endpoint = WebhookEndpoint(
        merchant_id=merchant_id,
        url=url,
        events=webhook_events_validate(events),
        description=description,
        secret_encrypted=text_encrypt(webhook_secret_new()),
    )
    endpoint.full_clean(exclude=["merchant"])
    endpoint.save()
    return endpoint


def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    now: datetime,
    url: str | None = None,
    events: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change an endpoint's URL, events, description or whether it is enabled (what is None
    stays). Enabling a disabled endpoint clears its failing streak; its deliveries that failed
    meanwhile stay failed until staff send them again. Raises ``ValidationError``."""
    if url is not None:
        webhook_url_validate(url)
        endpoint.url = url
    if events is not None:
        endpoint.events = webhook_events_validate(events)
    if description is not None:
        endpoint.description = description
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        endpoint.failing_since = None
        endpoint.disabled_at = None if enabled else now
        endpoint.disabled_reason = "" if enabled else "Disabled by staff."
    endpoint.full_clean(exclude=["merchant"])
    endpoint.save()
    return endpoint


def webhook_endpoint_secret_rotate(*, endpoint_id: int, now: datetime) -> WebhookEndpoint:
    """Give the endpoint a new secret; the current one stays valid (deliveries signed with both)
    for ``SECRET_OVERLAP_HOURS``, replacing any older one still in its overlap. Locks the
    endpoint's row, so two rotations at once leave one previous secret, not a lost one."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted  # as it is, still sealed
        endpoint.previous_secret_expires_at = now + timedelta(
            hours=_config()["SECRET_OVERLAP_HOURS"]
        )
        endpoint.secret_encrypted = text_encrypt(webhook_secret_new())
        endpoint.save(
            update_fields=[
                "previous_secret_encrypted",
                "previous_secret_expires_at",
                "secret_encrypted",
                "updated_at",
            ]
        )
    return endpoint


def webhook_endpoint_secrets(*, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets a delivery is signed with at ``now``, in clear: the current one, and the
    previous one while its overlap lasts. Raises ``ValueError`` when no configured key reads
    them (``core.crypto.text_decrypt``)."""
    kept = endpoint.previous_secret_expires_at
    current = text_decrypt(endpoint.secret_encrypted)
    if endpoint.previous_secret_encrypted and kept is not None and now < kept:
        return [current, text_decrypt(endpoint.previous_secret_encrypted)]
    return [current]


def webhook_endpoint_secret(*, endpoint: WebhookEndpoint) -> str:
    """The endpoint's current secret in clear, to show to its merchant (who verifies deliveries
    with it). Raises ``ValueError`` when no configured key reads it."""
    return text_decrypt(endpoint.secret_encrypted)
