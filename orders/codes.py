"""Confirmation codes: five characters from an alphabet without look-alikes (DESIGN §3.3)."""

import secrets

from orders.models import CONFIRMATION_ALPHABET, CONFIRMATION_CODE_LENGTH, Order, OrderStatus


def _code() -> str:
    return "".join(secrets.choice(CONFIRMATION_ALPHABET) for _ in range(CONFIRMATION_CODE_LENGTH))


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
