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

from core import outbox
from core.crypto import text_decrypt, text_encrypt
from orders.models import SUBSCRIPTIONS, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint

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
        ipaddress.ip_address(host)
    except ValueError:
        return  # a name: checked again, resolved, before every attempt (the sender)
    if not webhook_address_public(host):
        raise ValidationError({"url": "The URL must be a public address."})


# Prefixes Python's ``is_global`` calls global that reach IPv4 addresses of our own network
# through a translator (NAT64, 6to4, and NAT64's local-use prefix).
_TRANSLATED_NETWORKS = tuple(
    ipaddress.ip_network(net) for net in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16")
)


def webhook_address_public(address: str) -> bool:
    """Whether the IP ``address`` is one a merchant's endpoint may be reached at: global
    (not loopback, private, link-local like a cloud's metadata service, shared, reserved or
    multicast), not an IPv4-mapped address of a non-global one, and not in a NAT64 or 6to4
    prefix (which lead to any IPv4 address, ours included). False for anything not an IP."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return webhook_address_public(str(ip.ipv4_mapped))
        if any(ip in net for net in _TRANSLATED_NETWORKS):
            return False
    return ip.is_global and not ip.is_multicast


def webhook_host_resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to now, in the resolver's order (empty when it does not
    resolve). The sender resolves once per attempt and connects to an address from this list,
    never to the name, so what was checked is what is reached (no DNS rebinding)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


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
    stays). Disabling holds its queued deliveries (and events recorded while it is disabled are
    held for it too); enabling clears its failing streak and queues every held delivery at
    once, with three fresh days of retries (``webhook_deliveries_release``). Deliveries that
    failed for good stay failed until staff send them again. Raises ``ValidationError``."""
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
    with transaction.atomic():
        endpoint.save()
        if enabled is True:
            webhook_deliveries_release(endpoint_id=endpoint.pk, now=now)
        elif enabled is False:
            WebhookDelivery.objects.filter(
                endpoint_id=endpoint.pk, status=WebhookDeliveryStatus.QUEUED
            ).update(
                status=WebhookDeliveryStatus.HELD, last_error="Held: the endpoint was disabled."
            )
    return endpoint


def webhook_deliveries_release(*, endpoint_id: int, now: datetime) -> int:
    """Queue at once the deliveries held (or left queued) for an endpoint while it was
    disabled, oldest first as ever, each with three fresh days of retries from ``now``;
    returns how many. A no-op for an endpoint with none."""
    give_up_at = outbox.policy("webhooks").give_up_at(now)
    return WebhookDelivery.objects.filter(
        endpoint_id=endpoint_id,
        status__in=[WebhookDeliveryStatus.HELD, WebhookDeliveryStatus.QUEUED],
    ).update(
        status=WebhookDeliveryStatus.QUEUED,
        attempts=0,
        next_attempt_at=now,
        give_up_at=give_up_at,
        last_error="",
    )


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
