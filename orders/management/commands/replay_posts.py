"""Replay a saved platform API response through normalisation and the decision path.

For incident replay and for trying Hashcart on real data: the posts are stored in the inbox of
the platform's brand account (``--account``, else the first enabled one, else a disabled
``replay-<platform>`` account made for it, which is never polled) and decided in batches as
the workers would; the outcome counts are printed. Replaying a file twice decides nothing twice.

A bad file (missing, a directory, empty, not JSON, not a response of the platform) is one line
on stderr and exit status 1, with no traceback. A bad item in a good file is stored as
``malformed`` like the feed stores it, the rest is decided, and the command then exits 1 with
one line naming the bad items.
"""

import json
from collections import Counter
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from orders.outcomes import PostOutcome
from orders.services import posts_decide
from social.models import Platform, PlatformAccount, Post
from social.replay import ReplayError, replay_parse
from social.services import inbox_post_id, inbox_store, replay_account_ensure

BATCH = 500


class Command(BaseCommand):
    help = "Ingest FILE (a platform's API response) and decide its posts; print outcome counts."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file")
        parser.add_argument(
            "--platform", required=True, choices=["x", "mastodon", "bluesky", "sandbox"]
        )
        parser.add_argument("--account", help="the brand account's handle on that platform")

    def handle(self, *args: Any, **options: Any) -> None:
        platform = options["platform"]
        path = Path(options["file"])
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{path} is not JSON: it is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path} is not JSON: {exc}") from None
        try:
            posts = replay_parse(platform=platform, payload=payload)
        except ReplayError as exc:
            raise CommandError(str(exc)) from None
        account = self._account(platform, options["account"])
        now = timezone.now()
        with transaction.atomic():
            inbox_store(account=account, posts=posts, now=now)
        ids = list(
            Post.objects.filter(
                platform=platform, post_id__in=[inbox_post_id(p.post_id) for p in posts], outcome=""
            )
            .order_by("id")
            .values_list("pk", flat=True)
        )
        outcomes: Counter[str] = Counter()
        for start in range(0, len(ids), BATCH):
            outcomes.update(posts_decide(post_ids=ids[start : start + BATCH], now=timezone.now()))
        already = len({p.post_id for p in posts if not p.malformed}) - len(ids)
        self.stdout.write(
            f"{len(posts)} post(s) read, {len(ids)} decided now, {already} decided before"
        )
        malformed = [p for p in posts if p.malformed]
        if malformed:
            outcomes[PostOutcome.MALFORMED] += len(malformed)
        for outcome, count in sorted(outcomes.items()):
            self.stdout.write(f"  {outcome}: {count}")
        if malformed:
            items = "; ".join(f"{p.post_id}: {p.malformed}" for p in malformed[:5])
            more = f" and {len(malformed) - 5} more" if len(malformed) > 5 else ""
            raise CommandError(f"{len(malformed)} malformed item(s) in {path}: {items}{more}")

    def _account(self, platform: str, handle: str | None) -> PlatformAccount:
        accounts = PlatformAccount.objects.filter(platform=platform)
        if handle:
            account = accounts.filter(handle__iexact=handle.lstrip("@")).first()
            if account is None:
                raise CommandError(f"No {platform} brand account @{handle.lstrip('@')}.")
            return account
        account = accounts.filter(enabled=True).order_by("id").first()
        if account is not None:
            return account
        account, created = replay_account_ensure(platform=platform)
        if created:
            self.stderr.write(
                f"No {Platform(platform).label} brand account: using a disabled "
                f"@{account.handle} for the replay."
            )
        return account
