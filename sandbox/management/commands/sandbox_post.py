"""``sandbox_post HANDLE TEXT``: post on the sandbox network; prints the new post's id."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from core.exceptions import ApplicationError
from sandbox.services import sandbox_post_create


class Command(BaseCommand):
    help = "Post TEXT as HANDLE on the sandbox network (the user is created if new)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("handle")
        parser.add_argument("text")
        parser.add_argument("--reply-to", type=int, help="Id of the post this replies to.")
        parser.add_argument("--repost", type=int, help="Repost this post id (TEXT is ignored).")
        parser.add_argument("--quote", type=int, help="Id of the post this quotes.")
        parser.add_argument("--edit", type=int, help="Id of the author's post this edits.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            post = sandbox_post_create(
                handle=options["handle"],
                text=options["text"],
                now=timezone.now(),
                in_reply_to_id=options["reply_to"],
                repost_of_id=options["repost"],
                quote_of_id=options["quote"],
                edit_of_id=options["edit"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(str(post.pk))
