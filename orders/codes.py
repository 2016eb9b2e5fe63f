"""Confirmation codes: the format ``core.codes.CONFIRMATION_CODE`` (DESIGN §3.3), unique among
pending orders."""

from core.codes import CONFIRMATION_CODE
from orders.models import Order, OrderStatus


def _code() -> str:
    return CONFIRMATION_CODE.generate()


def confirmation_codes_new(*, count: int) -> list[str]:
    """``count`` distinct random codes that no pending order holds now.

    A concurrent batch could still pick one of them (odds about count / 28 million); the partial
    unique index then fails that batch's transaction, which is retried with new codes.
    """
    codes: set[str] = set()
    while len(codes) < count:
        wanted = {_code() for _ in range(count - len(codes))}
        taken = set(
            Order.objects.filter(
                status=OrderStatus.PENDING, confirmation_code__in=wanted
            ).values_list("confirmation_code", flat=True)
        )
        codes |= wanted - taken
    return list(codes)[:count]
