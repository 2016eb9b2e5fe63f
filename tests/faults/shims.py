"""Test-only shims around the sandbox platform and gateway, for the fault suite's workers.

They behave exactly like the sandbox until the test drops a file in ``HASHCART_FAULTS_DIR``:

- ``send.armed``: the next reply is posted on the sandbox network, then the sender holds
  (the file becomes ``send.holding``) until it is killed: the platform has the reply, Hashcart
  has not recorded it.
- ``authorize.armed``: the next authorization is entered in the sandbox ledger, then the payment
  worker holds (``authorize.holding``) until it is killed: the gateway has the hold, Hashcart
  does not know.
- ``refund.armed``: the next refund is entered in the sandbox ledger, then the payment worker
  holds (``refund.holding``) until it is killed: the money went back, Hashcart does not know.
- ``gateway.lost``: every gateway call is entered in the ledger and then answered with a
  timeout (``GatewayError``), as a gateway whose answers are lost, until the file is removed;
- ``gateway.down``: every gateway call times out before reaching the gateway (nothing is
  entered in the ledger), until the file is removed.

A hold is taken by renaming the armed file, so exactly one call holds, whichever worker runs it.
"""

import os
import time
from decimal import Decimal
from pathlib import Path

from orders.payments.base import GatewayError, GatewayResult
from sandbox.adapter import SandboxAdapter
from sandbox.gateway import SandboxGateway
from social.models import PlatformAccount

HOLD_SECONDS = 600  # far beyond any test: the worker is killed while it waits


def _faults_dir() -> Path | None:
    value = os.environ.get("HASHCART_FAULTS_DIR")
    return Path(value) if value else None


def _hold(point: str) -> None:
    """Hold here until killed, if the test armed ``point``; otherwise return at once."""
    directory = _faults_dir()
    if directory is None:
        return
    holding = directory / f"{point}.holding"
    try:
        os.rename(directory / f"{point}.armed", holding)
    except FileNotFoundError:
        return
    holding.write_text(str(os.getpid()))  # the test kills this very process
    time.sleep(HOLD_SECONDS)


def _flag(name: str) -> bool:
    directory = _faults_dir()
    return directory is not None and (directory / name).exists()


def _reach() -> None:
    if _flag("gateway.down"):
        raise GatewayError("timed out (the gateway was not reached)")


def _answer() -> None:
    if _flag("gateway.lost"):
        raise GatewayError("timed out (the answer was lost)")


class HoldingSandboxAdapter(SandboxAdapter):
    def send_reply(
        self,
        *,
        account: PlatformAccount,
        in_reply_to_post_id: str,
        text: str,
        idempotency_key: str,
        visibility: str = "public",
    ) -> str:
        reply_id = super().send_reply(
            account=account,
            in_reply_to_post_id=in_reply_to_post_id,
            text=text,
            idempotency_key=idempotency_key,
            visibility=visibility,
        )
        _hold("send")
        return reply_id


class FaultySandboxGateway(SandboxGateway):
    def authorize(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str, order_id: int
    ) -> GatewayResult:
        _reach()
        result = super().authorize(
            token=token,
            amount=amount,
            currency=currency,
            idempotency_key=idempotency_key,
            order_id=order_id,
        )
        _hold("authorize")
        _answer()
        return result

    def authorization_lookup(self, *, idempotency_key: str, order_id: int) -> GatewayResult | None:
        _reach()
        result = super().authorization_lookup(idempotency_key=idempotency_key, order_id=order_id)
        _answer()
        return result

    def capture(
        self, *, reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult:
        _reach()
        result = super().capture(
            reference=reference, amount=amount, currency=currency, idempotency_key=idempotency_key
        )
        _answer()
        return result

    def void(self, *, reference: str, idempotency_key: str) -> GatewayResult:
        _reach()
        result = super().void(reference=reference, idempotency_key=idempotency_key)
        _answer()
        return result

    def refund(
        self,
        *,
        reference: str,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        order_id: int,
    ) -> GatewayResult:
        _reach()
        result = super().refund(
            reference=reference,
            amount=amount,
            currency=currency,
            idempotency_key=idempotency_key,
            order_id=order_id,
        )
        _hold("refund")
        _answer()
        return result

    def refund_lookup(self, *, reference: str, idempotency_key: str) -> GatewayResult | None:
        _reach()
        result = super().refund_lookup(reference=reference, idempotency_key=idempotency_key)
        _answer()
        return result
