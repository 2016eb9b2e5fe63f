"""Issue an API token to a staff login with TOTP: the merchant API acts as that login."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.services.api_tokens import api_token_issue
from core.exceptions import ApplicationError


class Command(BaseCommand):
    help = (
        "Issue a new API token to staff login USERNAME (e-mail or username; it needs TOTP) and "
        "print it: it is shown once, stored hashed, and expires. --rotate revokes the earlier "
        "tokens of the login."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--rotate", action="store_true", help="revoke the login's earlier tokens"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            instance, token = api_token_issue(
                login=options["username"], revoke_others=options["rotate"]
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(token)
        expiry = f"{instance.expiry:%Y-%m-%d %H:%M} UTC" if instance.expiry else "never"
        self.stderr.write(f"Expires {expiry}; only its digest is stored: keep it now.")
