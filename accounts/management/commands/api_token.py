"""Issue (or rotate) the API token of a staff login: the merchant API acts as that login."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from accounts.models import User


class Command(BaseCommand):
    help = "Print the API token of staff login USERNAME (e-mail or username); --rotate replaces it."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--rotate", action="store_true", help="revoke the old token first")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        login = options["username"]
        user = (
            User.objects.filter(email__iexact=login).first()
            or User.objects.filter(username=login).first()
        )
        if user is None or not user.is_staff or not (user.is_superuser or user.merchant_id):
            raise CommandError(f"{login} is not a merchant's staff login or an operator.")
        if options["rotate"]:
            Token.objects.filter(user=user).delete()
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
