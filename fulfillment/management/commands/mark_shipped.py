"""Record that an order left with a label bought elsewhere; captures its payment once."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from core.exceptions import ApplicationError
from fulfillment.services import order_mark_shipped
from orders.models import Order


class Command(BaseCommand):
    help = "Mark ORDER (its number or confirmation code) shipped with a tracking number."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("order", help="order number or confirmation code")
        parser.add_argument("--tracking", required=True, help="the carrier's tracking number")
        parser.add_argument("--carrier", default="other", help="the carrier's name")
        parser.add_argument("--dry-run", action="store_true", help="check, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        key = options["order"].lstrip("#")
        lookup = Q(confirmation_code=key.upper())
        if key.isdigit():
            lookup |= Q(pk=int(key))
        orders = list(Order.objects.filter(lookup).order_by("-id")[:2])
        if len(orders) != 1:
            raise CommandError(f"No single order matches {options['order']!r}.")
        order = orders[0]
        if options["dry_run"]:
            self.stdout.write(
                f"would mark order #{order.confirmation_code} ({order.status}) shipped"
            )
            return
        try:
            result = order_mark_shipped(
                order=order,
                carrier=options["carrier"],
                tracking_number=options["tracking"],
                actor="mark_shipped",
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if result != "bought":
            raise CommandError(
                f"Order #{order.confirmation_code} is {order.status}: it cannot be marked shipped."
            )
        self.stdout.write(
            f"order #{order.confirmation_code} shipped, tracking {options['tracking']}; "
            "payment captured"
        )
