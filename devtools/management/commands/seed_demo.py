"""``seed_demo``: load the demo catalogue, logins, brand account and buyer (idempotent)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from devtools.demo import demo_seed


class Command(BaseCommand):
    help = "Load the demo data set; safe to run again. Prints the demo logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            default="hashcart-demo",
            help="Password of every demo login (default: hashcart-demo).",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even when DEBUG is off (never on a real deployment).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_demo creates logins with a known password; it runs only with DEBUG on "
                "(or --force)."
            )
        seed = demo_seed(now=timezone.now(), password=options["password"])
        for campaign in seed.campaigns:
            self.stdout.write(
                f"campaign: #{campaign.hashtag} {campaign.price} {campaign.currency} "
                f"stock {campaign.stock_total - campaign.stock_reserved}/{campaign.stock_total} "
                f"until {campaign.ends_at:%Y-%m-%d}"
            )
        for role, login, password in seed.credentials:
            self.stdout.write(f"login: {login} / {password} ({role})")
        self.stdout.write(f"brand: @{seed.brand_handle}")
        self.stdout.write(f"buyer: @{seed.buyer_handle}")
