"""Payment gateways behind one contract (``base.PaymentGateway``), chosen by settings."""

from django.conf import settings
from django.utils.module_loading import import_string

from orders.payments.base import PaymentGateway


def gateway() -> PaymentGateway:
    """The gateway named by ``HASHCART["PAYMENT_GATEWAY"]`` (a dotted path)."""
    return import_string(settings.HASHCART["PAYMENT_GATEWAY"])()
