"""The payment outbox's health check, run by /healthz (``HASHCART["HEALTH_CHECKS"]``)."""

from core.health import HealthReport
from orders.selectors import payment_operations_failed


def payment_failures() -> HealthReport:
    """Not ok while any payment operation is ``failed`` (a capture, void or authorization given
    up or refused): money is not captured or a hold not released until ops retry it with
    ``retry_payments`` (DESIGN §5.5)."""
    failed = payment_operations_failed(limit=6)
    if not failed:
        return HealthReport(name="PaymentFailures", ok=True)
    shown = ", ".join(f"#{op.id} {op.operation} of order {op.order_id}" for op in failed[:5])
    more = " and more" if len(failed) > 5 else ""
    return HealthReport(
        name="PaymentFailures",
        ok=False,
        detail=f"Payment operations failed: {shown}{more} (run retry_payments).",
    )
