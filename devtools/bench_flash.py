"""The flash-sale benchmark (``manage.py bench_flash_sale``): the real pipeline on PostgreSQL
and Redis with real Celery worker processes.

It works in a database of its own on the configured server (``<name>_bench``, made afresh each
run), so it never touches the product's data. Posts enter the inbox as the poller stores them
(conflict-ignoring bulk inserts, a decide task per stored chunk); the workers decide them.
"""

import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections
from django.db.models import Count, Max, Min
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Campaign, Merchant, Product
from devtools.bench_data import BulkBuyer, buyers_bulk_create, inbox_post
from orders.models import Notification, Order, OrderStatus
from orders.services import posts_decide
from orders.services.common import PRIVATE_REQUEST
from orders.tasks import (
    notifications_send_task,
    payments_run_task,
    posts_decide_task,
    replies_send_all_task,
    requests_private_task,
)
from sandbox.models import SandboxPost, SandboxUser
from sandbox.services import sandbox_user_ensure
from social.hashtags import hashtag_key
from social.models import PlatformAccount, Post, PostKind, Reply

BRAND = "HashcartDeals"
Say = Callable[[str], None]


@dataclass
class Phase:
    name: str
    offered: int
    stored: int
    seconds: float
    # How long the bench itself took to store the posts and send their tasks.
    offered_in_seconds: float
    decided_per_second: float
    latency_ms: dict[str, float]
    outcomes: dict[str, int]


@dataclass
class Report:
    parameters: dict[str, Any]
    phases: list[Phase] = field(default_factory=list)
    replies_queued_by_kind: dict[str, int] = field(default_factory=dict)
    invariants: dict[str, Any] = field(default_factory=dict)
    confirmations_per_second: float = 0.0
    authorizations: dict[str, Any] = field(default_factory=dict)
    pgbench: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, Any] = field(default_factory=dict)
    queries_per_batch: dict[int, int] = field(default_factory=dict)
    # With ``--reply-budget``: seconds from purchase post to confirmation request (public or
    # private) of the last buyer and over all buyers, and how many went each way.
    requests: dict[str, Any] = field(default_factory=dict)


# --- The bench database ------------------------------------------------------------------------
def bench_database_use(say: Say) -> dict[str, Any]:
    """Create ``<name>_bench`` afresh on the configured server, point this process at it and
    migrate it. Returns its connection settings; ``bench_database_leave`` undoes the switch."""
    base = dict(connection.settings_dict)
    name = f"{base['NAME']}_bench"
    _admin_execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin_execute(base, f'CREATE DATABASE "{name}"')
    _switch(name)
    say(f"bench database: {name} (created afresh)")
    call_command("migrate", verbosity=0)
    return dict(connection.settings_dict)


def bench_database_leave(*, original: str, keep: bool, say: Say) -> None:
    """Point this process back at ``original``; drop the bench database unless ``keep``."""
    bench = dict(connection.settings_dict)
    _switch(original)
    if keep:
        say(f"bench database kept: {bench['NAME']}")
    else:
        _admin_execute(bench, f'DROP DATABASE IF EXISTS "{bench["NAME"]}" WITH (FORCE)')


def _switch(name: str) -> None:
    connections.close_all()
    settings.DATABASES["default"]["NAME"] = name
    connection.settings_dict["NAME"] = name


def _admin_execute(db: dict[str, Any], sql: str) -> None:
    with psycopg.connect(_dsn(db, "postgres"), autocommit=True) as admin:
        # Identifiers come from our own settings, never from input.
        admin.execute(sql.encode())


def _dsn(db: dict[str, Any], name: str | None = None) -> str:
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgresql://{db['USER']}{password}@{db['HOST'] or 'localhost'}:"
        f"{db['PORT'] or 5432}/{name or db['NAME']}"
    )


# --- Workers -----------------------------------------------------------------------------------
class Workers:
    """Celery worker processes on the bench database (no beat: the bench sends the work)."""

    def __init__(self, *, db: dict[str, Any], concurrency: int, log: Path) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": _dsn(db).replace("postgresql://", "postgres://", 1),
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            # As in production: a debug cursor records every query in memory.
            "DJANGO_DEBUG": "false",
            "LOG_LEVEL": "WARNING",
        }
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log
        self._log = log.open("w")
        self.process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-c",
                str(concurrency),
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"bench-{os.getpid()}@%h",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not start; see {log}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


# --- The data ----------------------------------------------------------------------------------
@dataclass
class Sale:
    account: PlatformAccount
    campaign: Campaign
    buyers: list[BulkBuyer]


def reply_budget_parse(text: str) -> tuple[int, int]:
    """``N/SECONDS`` (say ``100/900``, X's 100 replies per 15 minutes) as (N, SECONDS)."""
    found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if found is None or int(found.group(2)) == 0:
        raise ValueError(f"a reply budget is N/SECONDS, such as 100/900, not {text!r}")
    return int(found.group(1)), int(found.group(2))


def sale_prepare(
    *, units: int, buyers: int, say: Say, reply_budget: tuple[int, int] | None = None
) -> Sale:
    now = timezone.now()
    brand = sandbox_user_ensure(handle=BRAND)
    account = PlatformAccount.objects.create(
        platform="sandbox", platform_user_id=str(brand.pk), handle=BRAND
    )  # X's budget: 100 per 15 minutes
    if reply_budget is not None:
        account.reply_budget, account.reply_budget_seconds = reply_budget
        account.save(update_fields=["reply_budget", "reply_budget_seconds"])
    merchant = Merchant.objects.create(name="Bench", slug="bench")
    product = Product.objects.create(merchant=merchant, name="Kindle Fire HD", sku="KFHD")
    campaign = campaign_make(product=product, hashtag="BuyKindleFireHD", units=units)
    started = time.perf_counter()
    made = buyers_bulk_create(prefix="buyer", count=buyers, now=now)
    say(f"{buyers:,} linked cardholders created in {time.perf_counter() - started:.1f} s")
    sale = Sale(account=account, campaign=campaign, buyers=made)
    history_seed(sale=sale, posts=buyers, say=say)
    return sale


def history_seed(*, sale: Sale, posts: int, say: Say) -> None:
    """A live inbox is not empty: ``posts`` decided posts of an earlier day from the same
    people, then ``ANALYZE``, so the planner works from statistics as it does in production
    (``pgbench -i`` ends the same way). Without them it guesses on the freshly filled tables
    and picks plans no live database would."""
    started = time.perf_counter()
    day_before = timezone.now() - timedelta(days=1)
    for start in range(0, posts, 5_000):
        rows = []
        for n in range(start, min(start + 5_000, posts)):
            buyer = sale.buyers[n % len(sale.buyers)]
            row = inbox_post(
                account=sale.account,
                post_id=str(1_000_000 + n),
                author_id=buyer.platform_user_id,
                handle=buyer.handle,
                text=f"@{BRAND} yesterday's post {n}",
                posted_at=day_before,
            )
            row.outcome, row.decided_at = "no_campaign", day_before
            rows.append(row)
        Post.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    say(
        f"{posts:,} earlier posts in the inbox, statistics gathered, in "
        f"{time.perf_counter() - started:.1f} s"
    )


def campaign_make(*, product: Product, hashtag: str, units: int) -> Campaign:
    now = timezone.now()
    return Campaign.objects.create(
        merchant=product.merchant,
        product=product,
        platform="sandbox",
        hashtag=hashtag,
        hashtag_key=hashtag_key(hashtag),
        price=Decimal("149.00"),
        stock_total=units,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=30),
    )


def posts_make(
    *,
    sale: Sale,
    hashtag: str,
    purchases: list[BulkBuyer],
    noise: int,
    first_id: int,
    on_network: bool = False,
) -> list[Post]:
    """Purchase posts (one per buyer) plus ``noise``: retweets of purchase posts, unlinked
    authors, unrelated hashtags, and posts delivered twice; shuffled. ``on_network``: the
    purchase posts are made on the sandbox network too, with the same ids, so that replies to
    them can be posted (the bench sends replies only with ``--reply-budget``)."""
    now = timezone.now()
    next_id = iter(range(first_id, first_id + 10 * (len(purchases) + noise)))
    text = f"@{BRAND} #{hashtag}"
    posts = [
        inbox_post(
            account=sale.account,
            post_id=str(next(next_id)),
            author_id=b.platform_user_id,
            handle=b.handle,
            text=text,
            posted_at=now,
        )
        for b in purchases
    ]
    if on_network:
        SandboxPost.objects.bulk_create(
            [
                SandboxPost(
                    pk=int(p.post_id), author_id=int(p.author_id), text=p.text, created_at=now
                )
                for p in posts
            ],
            batch_size=5_000,
        )
    unlinked = SandboxUser.objects.bulk_create(
        [SandboxUser(handle=f"stranger{first_id}_{n}") for n in range(noise // 4)]
    )
    rng = random.Random(first_id)  # noqa: S311 (a reproducible mix, not a secret)
    for n in range(noise):
        kind = n % 4
        if kind == 0:  # a retweet of a purchase post
            source = rng.choice(purchases)
            posts.append(
                inbox_post(
                    account=sale.account,
                    post_id=str(next(next_id)),
                    author_id=rng.choice(purchases).platform_user_id,
                    handle="rt",
                    text=f"RT @{source.handle}: {text}",
                    posted_at=now,
                    kind=PostKind.REPOST,
                )
            )
        elif kind == 1:  # an author who never linked
            user = unlinked[n // 4 % len(unlinked)]
            posts.append(
                inbox_post(
                    account=sale.account,
                    post_id=str(next(next_id)),
                    author_id=str(user.pk),
                    handle=user.handle,
                    text=text,
                    posted_at=now,
                )
            )
        elif kind == 2:  # unrelated hashtags
            buyer = rng.choice(purchases)
            posts.append(
                inbox_post(
                    account=sale.account,
                    post_id=str(next(next_id)),
                    author_id=buyer.platform_user_id,
                    handle=buyer.handle,
                    text=f"@{BRAND} love it #Kindle #BlackFriday",
                    posted_at=now,
                )
            )
        else:  # the same post delivered twice
            posts.append(rng.choice(posts[: len(purchases)]))
    rng.shuffle(posts)
    return posts


# --- Running a phase ---------------------------------------------------------------------------
def _offer(posts: list[Post], *, chunk: int, rate: float | None) -> None:
    """Store ``posts`` in the inbox a chunk at a time, as the poller does, and send a decide
    task per chunk; at ``rate`` posts per second, or as fast as possible."""
    started = time.perf_counter()
    for start in range(0, len(posts), chunk):
        if rate:
            due = started + start / rate
            if (pause := due - time.perf_counter()) > 0:
                time.sleep(pause)
        part = posts[start : start + chunk]
        Post.objects.bulk_create(part, ignore_conflicts=True)
        ids = list(
            Post.objects.filter(
                platform="sandbox", outcome="", post_id__in=[p.post_id for p in part]
            ).values_list("pk", flat=True)
        )
        if ids:
            posts_decide_task.delay(ids)


def _wait_decided(post_ids_from: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Post.objects.filter(pk__gt=post_ids_from, outcome="").exists():
            return
        time.sleep(0.1)
    raise RuntimeError("posts were left undecided: are the workers running?")


def phase_run(
    *, name: str, posts: list[Post], chunk: int, rate: float | None, timeout: float = 600
) -> Phase:
    before = Post.objects.aggregate(m=Max("id"))["m"] or 0
    started = time.perf_counter()
    _offer(posts, chunk=chunk, rate=rate)
    offered_in = time.perf_counter() - started
    _wait_decided(before, timeout)
    rows = Post.objects.filter(pk__gt=before)
    stored = rows.count()
    span = rows.aggregate(first=Min("received_at"), last=Max("decided_at"))
    seconds = (span["last"] - span["first"]).total_seconds() if stored else 0.0
    latencies = sorted(
        (decided - received).total_seconds() * 1000
        for received, decided in rows.values_list("received_at", "decided_at")
        if decided is not None
    )
    return Phase(
        name=name,
        offered=len(posts),
        stored=stored,
        seconds=round(seconds, 3),
        offered_in_seconds=round(offered_in, 3),
        decided_per_second=round(stored / seconds, 1) if seconds else 0.0,
        latency_ms={
            "p50": _pct(latencies, 50),
            "p95": _pct(latencies, 95),
            "p99": _pct(latencies, 99),
            "max": round(latencies[-1], 1),
        },
        outcomes=dict(rows.values_list("outcome").annotate(n=Count("id")).order_by("outcome")),
    )


def _pct(values: list[float], pct: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[pct - 1], 1)


def queries_per_batch(*, sale: Sale, sizes: tuple[int, ...], first_id: int) -> dict[int, int]:
    """Queries of deciding one batch of each size, of the flash sale's mix (purchases, which
    are duplicates or sold out by now, and noise), in this process, after a first batch."""
    found: dict[int, int] = {}
    for n, size in enumerate((sizes[0], *sizes)):
        noise = 4 * max(1, size // 20)  # a quarter of each kind of noise, as in the sale
        posts = posts_make(
            sale=sale,
            hashtag=sale.campaign.hashtag,
            purchases=sale.buyers[: size - noise],
            noise=noise,
            first_id=first_id + n * 100_000,
        )
        Post.objects.bulk_create(posts, ignore_conflicts=True)
        ids = list(
            Post.objects.filter(
                platform="sandbox", outcome="", post_id__in=[p.post_id for p in posts]
            ).values_list("pk", flat=True)
        )
        with CaptureQueriesContext(connection) as captured:
            posts_decide(post_ids=ids, now=timezone.now())
        if n:  # the first batch reads the campaigns, kept for the next ones
            found[size] = len(captured.captured_queries)
    return found


# --- Invariants and confirmations --------------------------------------------------------------
def invariants_check(*, campaign: Campaign, units: int) -> dict[str, Any]:
    campaign.refresh_from_db()
    orders = Order.objects.filter(campaign=campaign)
    per_buyer = orders.values("cardholder_id").annotate(n=Count("id")).filter(n__gt=1).count()
    duplicate_replies = (
        Reply.objects.values("account_id", "text").annotate(n=Count("id")).filter(n__gt=1).count()
    )
    return {
        "orders": orders.count(),
        "orders_equal_units": orders.count() == units,
        "buyers_with_two_orders": per_buyer,
        "posts_with_two_orders": orders.values("purchase_post")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "duplicate_reply_texts": duplicate_replies,
        "stock_reserved": campaign.stock_reserved,
        "stock_never_negative": 0 <= campaign.stock_reserved <= campaign.stock_total,
        "undecided_posts": Post.objects.filter(outcome="").count(),
    }


def confirmations_run(*, sale: Sale, chunk: int) -> tuple[Phase, dict[str, Any]]:
    """Every pending order's author posts its confirmation hashtag; then the authorizations."""
    pending = list(
        Order.objects.filter(campaign=sale.campaign, status=OrderStatus.PENDING).values_list(
            "author_id", "author_handle", "confirmation_code"
        )
    )
    now = timezone.now()
    posts = [
        inbox_post(
            account=sale.account,
            post_id=str(50_000_000 + n),
            author_id=author,
            handle=handle,
            text=f"@{BRAND} #Confirm{code}",
            posted_at=now,
        )
        for n, (author, handle, code) in enumerate(pending)
    ]
    phase = phase_run(name="confirmations", posts=posts, chunk=chunk, rate=None)
    started = time.perf_counter()
    payments_run_task.delay()
    deadline = time.monotonic() + 300
    while Order.objects.filter(campaign=sale.campaign, status=OrderStatus.CONFIRMED).exists():
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    paid = Order.objects.filter(campaign=sale.campaign, status=OrderStatus.PAID).count()
    return phase, {
        "paid": paid,
        "seconds": round(seconds, 2),
        "per_second": round(paid / seconds, 1) if seconds else 0.0,
    }


# --- pgbench -----------------------------------------------------------------------------------
def pgbench_run(
    *, db: dict[str, Any], seconds: int, clients: int, say: Say, scale: int = 10
) -> dict[str, Any]:
    """TPC-B (pgbench's built-in script) for ``seconds`` against the same server, on a pgbench
    database of ``scale`` (10: a million accounts, the measured figures' setting)."""
    if shutil.which("pgbench") is None:
        raise RuntimeError(
            "pgbench is not installed (Debian: postgresql-contrib or postgresql-client)"
        )
    name = f"{db['NAME']}_pgbench"
    _admin_execute(db, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin_execute(db, f'CREATE DATABASE "{name}"')
    uri = _dsn(db, name)
    subprocess.run(  # noqa: S603
        ["pgbench", "-i", "-q", "-s", str(scale), uri],  # noqa: S607
        check=True,
        capture_output=True,
    )
    say(f"pgbench: TPC-B, {clients} clients, {seconds} s ...")
    result = subprocess.run(  # noqa: S603
        ["pgbench", "-T", str(seconds), "-c", str(clients), "-j", str(clients), uri],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    )
    found = re.search(r"tps = ([\d.]+)", result.stdout)
    _admin_execute(db, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if found is None:
        raise RuntimeError(f"could not read pgbench's output:\n{result.stdout}")
    return {"tps": float(found.group(1)), "clients": clients, "seconds": seconds, "scale": scale}


def report_write(report: Report, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"flash_sale-{timezone.now():%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(asdict(report), indent=2, default=str))
    return path


# --- Confirmation requests under the reply budget -----------------------------------------------
def requests_run(*, sale: Sale, timeout: float = 300) -> dict[str, Any]:
    """Stand in for the beat (the bench runs none) until every order of the sale has its
    confirmation request out, publicly or privately (its window open): the reply senders, the
    switch to the private channel and the e-mails, at the beat's own intervals. Then the time
    from each purchase post to its request: the last buyer's (the last order made), p50, p99
    and the slowest, and the invariants of the two channels."""
    every = float(settings.CELERY_BEAT_SCHEDULE["private-requests"]["schedule"])
    orders = Order.objects.filter(campaign=sale.campaign)
    started = time.monotonic()
    while orders.filter(status=OrderStatus.PENDING, expires_at__isnull=True).exists():
        if time.monotonic() - started > timeout:
            raise RuntimeError("confirmation requests were left unsent: are the workers running?")
        for task in (replies_send_all_task, requests_private_task, notifications_send_task):
            task.delay()
        time.sleep(every)
    window = timedelta(minutes=settings.HASHCART["CONFIRMATION_WINDOW_MINUTES"])
    rows = list(
        orders.filter(expires_at__isnull=False)
        .order_by("created_at", "id")
        .values_list(
            "purchase_post__posted_at", "expires_at", "request_private_at", "confirmation_code"
        )
    )
    seconds = [(expires - window - posted).total_seconds() for posted, expires, _, _ in rows]
    private = [code for _, _, at, code in rows if at is not None]
    leaked = sum(
        1
        for text in Reply.objects.filter(
            kind="confirmation_request", in_reply_to__order__request_private_at__isnull=False
        ).values_list("text", flat=True)
        if any(code in text for code in private)
    )
    ordered = sorted(seconds)
    return {
        "orders": len(rows),
        "public": len(rows) - len(private),
        "private": len(private),
        "last_buyer_seconds": round(seconds[-1], 1) if seconds else None,
        "p50_seconds": _pct(ordered, 50) if len(ordered) > 1 else None,
        "p99_seconds": _pct(ordered, 99) if len(ordered) > 1 else None,
        "max_seconds": round(ordered[-1], 1) if ordered else None,
        "public_replies_with_a_private_code": leaked,
        "private_emails_sent": Notification.objects.filter(
            kind=PRIVATE_REQUEST, order__campaign=sale.campaign, status="done"
        ).count(),
    }


def replies_by_kind() -> dict[str, int]:
    return dict(Reply.objects.values_list("kind").annotate(n=Count("id")).order_by("kind"))
