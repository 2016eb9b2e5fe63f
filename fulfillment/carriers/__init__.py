"""Carriers behind one contract (``base.Carrier``), chosen by ``HASHCART["CARRIERS"]``."""

from django.conf import settings
from django.utils.module_loading import import_string

from fulfillment.carriers.base import Carrier


def carrier_for(name: str) -> Carrier:
    """The carrier called ``name`` (a key of ``HASHCART["CARRIERS"]``)."""
    try:
        path = settings.HASHCART["CARRIERS"][name]
    except KeyError:
        raise LookupError(f"No carrier is configured as {name!r}.") from None
    return import_string(path)()


def default_carrier() -> Carrier:
    return carrier_for(settings.HASHCART["DEFAULT_CARRIER"])
