"""``sandbox_timeline HANDLE``: the posts addressed to HANDLE, oldest first, one per line."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sandbox.services import sandbox_timeline


class Command(BaseCommand):
    help = "Print the posts addressed to HANDLE on the sandbox network, oldest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("handle")

    def handle(self, *args: Any, **options: Any) -> None:
        for post in sandbox_timeline(handle=options["handle"]):
            text = " ".join(post.text.split())
            self.stdout.write(f"{post.pk}\t@{post.author.handle}\t{text}")
