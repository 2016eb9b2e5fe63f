"""The fault suite's machinery: a private Redis server, Celery worker processes on the test
database, waiting with deadlines, and the invariants every scenario ends with."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from catalog.models import Campaign
from orders.models import Order, OrderStatus, PaymentOperation, holds_stock
from orders.selectors import pipeline_status
from sandbox.models import SandboxLedgerEntry, SandboxPost, SandboxUser
from sandbox.services import sandbox_post_create
from social.models import Post, Reply
from tests.shop import BRAND
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
# 28.8 s. In production a dead sender's claim lapses after 2 minutes and an order whose request
# cannot be posted is given up after 6 hours; here the claim lapses after 10 s, and the give-up
# must stay well behind it, or it races the sweep that takes a reply back and finds it posted.
GIVE_UP_HOURS = 0.008


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A redis-server of the suite's own on a loopback port, without persistence: stopping it
    loses every queued message, as a crashed Redis would."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(  # noqa: S603
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        wait_for(lambda: self._ping(client), "the private redis-server to answer", timeout=20)

    @staticmethod
    def _ping(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        """SIGKILL: the server and everything it held are gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)

    def flush(self) -> None:
        redis.Redis.from_url(self.url).flushall()


class Fleet:
    """Celery on the test database and the private Redis, shared by the whole fault suite
    (booting Django takes seconds on a loaded machine): one beat process and worker nodes of
    one pool process each, with the fault shims (``tests.faults.worker_settings``) and short
    sweep intervals. A pool process killed mid-task is replaced by its node; a killed node is
    replaced by ``ready`` before the next scenario."""

    NODES = 2

    def __init__(self, *, broker: str, workdir: Path) -> None:
        db = connection.settings_dict
        self.workdir = workdir
        self.faults_dir = workdir / "faults"
        self.faults_dir.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.faults.worker_settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": broker,
            "HASHCART_FAULTS_DIR": str(self.faults_dir),
            "HASHCART_POLL_INTERVAL_SECONDS": "0.3",
            "HASHCART_SWEEP_INTERVAL_SECONDS": "0.5",
            "HASHCART_RECOVER_INTERVAL_SECONDS": "2",
            # Long enough that a loaded machine still confirms in time: a killed sender's request
            # is found posted after its claim lapses, and its window counts from then.
            "HASHCART_CONFIRMATION_WINDOW_MINUTES": "5",
            # A killed sender's claim lapses after 10 s (its redelivered message runs before
            # that, as in production: 2 minutes, against a redelivery at once); an order whose
            # request cannot be posted gives up after 29 s (6 hours in production).
            "HASHCART_REPLY_CLAIM_SECONDS": "10",
            "HASHCART_CONFIRMATION_REQUEST_GIVE_UP_HOURS": str(GIVE_UP_HOURS),
            "CELERY_VISIBILITY_TIMEOUT": "5",
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        }
        self.beat: subprocess.Popen[bytes] | None = None
        self.nodes: list[tuple[subprocess.Popen[bytes], Path]] = []
        self._started = 0
        self._logs: list[Any] = []

    def _spawn(self, args: list[str], name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log_path = self.workdir / f"{name}.log"
        log = log_path.open("w")
        self._logs.append(log)
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "celery", "-A", "config", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return process, log_path

    def spawn(self) -> None:
        """Start beat if it is not running, and worker nodes up to ``NODES`` (not waiting)."""
        if self.beat is None or self.beat.poll() is not None:
            self.beat, _ = self._spawn(
                ["beat", "--loglevel=INFO", "-s", str(self.workdir / "beat-schedule")], "beat"
            )
        self.nodes = [(node, log) for node, log in self.nodes if node.poll() is None]
        while len(self.nodes) < self.NODES:
            n = self._started
            self._started += 1
            self.nodes.append(
                self._spawn(
                    [
                        "worker",
                        "-c",
                        "1",
                        "-n",
                        f"faults-{os.getpid()}-{n}@%h",
                        "--without-gossip",
                        "--without-mingle",
                        "--loglevel=INFO",
                    ],
                    f"worker-{n}",
                )
            )

    def ready(self) -> None:
        """Beat and ``NODES`` worker nodes running and ready to take messages."""
        self.spawn()
        for node, log_path in self.nodes:
            wait_for(partial(_started, node, log_path), f"{log_path.stem} to start")
            if node.poll() is not None:
                pytest.fail(f"{log_path.stem} exited at start:\n{log_path.read_text()[-3000:]}")

    @contextmanager
    def supervised(self) -> Iterator[None]:
        """Restart any node that exits, as systemd or Kubernetes would, while the block runs.
        Celery and kombu 5.7 workers sometimes exit ("Unrecoverable error: AttributeError")
        when Redis goes away under them; the deployment's supervisor must bring them back."""
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.5):
                self.spawn()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join(timeout=10)

    def reset(self) -> None:
        """Between scenarios: nothing armed, nothing held (a holding process sleeps for
        minutes and would keep its node busy)."""
        for path in self.faults_dir.iterdir():
            if path.name.endswith(".holding"):
                pid = path.read_text().strip()
                if pid:
                    self.kill_process(int(pid))
            path.unlink(missing_ok=True)

    def pool_processes(self) -> list[int]:
        """Pids of the nodes' pool processes (the ones that run tasks)."""
        parents = {node.pid for node, _ in self.nodes if node.poll() is None}
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) in parents:
                children.append(int(stat.parent.name))
        return children

    @staticmethod
    def kill_process(pid: int) -> None:
        """SIGKILL one process (say, the pool process running a task), as the OOM killer
        would; its node sees the loss and gives the task's message back (acks late)."""
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), f"{pid} to die")

    def kill_node_of(self, pid: int) -> None:
        """SIGKILL the whole worker node that runs process ``pid`` (its machine died); a
        replacement boots meanwhile, for the scenarios after this one."""
        for node, _ in self.nodes:
            if node.pid in (pid, _parent(pid)):
                os.killpg(node.pid, signal.SIGKILL)
                node.wait(timeout=20)
                self.spawn()
                return
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            command = "(gone)"
        nodes = [node.pid for node, _ in self.nodes]
        pytest.fail(
            f"process {pid} (parent {_parent(pid)}: {command}) belongs to no node of {nodes}"
        )

    def stop(self) -> None:
        for process in [*(node for node, _ in self.nodes), *([self.beat] if self.beat else [])]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)
        for log in self._logs:
            log.close()

    def arm(self, point: str) -> None:
        """Make the next ``point`` (``send`` or ``authorize``) hold until its process is
        killed."""
        (self.faults_dir / f"{point}.armed").touch()

    def holder(self, point: str) -> int | None:
        """The pid of the process holding at ``point``, once it holds."""
        path = self.faults_dir / f"{point}.holding"
        try:
            pid = path.read_text().strip()
        except FileNotFoundError:
            return None
        return int(pid) if pid else None

    def gateway(self, fault: str | None) -> None:
        """``lost``: the gateway acts but its answers are lost; ``down``: it is not reached;
        ``None``: it works again."""
        for name in ("lost", "down"):
            (self.faults_dir / f"gateway.{name}").unlink(missing_ok=True)
        if fault is not None:
            (self.faults_dir / f"gateway.{fault}").touch()


def _started(node: subprocess.Popen[bytes], log_path: Path) -> bool:
    return node.poll() is not None or " ready." in log_path.read_text()


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError):
        return -1


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def process_of_backend(backend_pid: int) -> int:
    """The local process that holds database session ``backend_pid`` (found by its TCP port)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_port FROM pg_stat_activity WHERE pid = %s", [backend_pid])
        row = cursor.fetchone()
    if row is None or not row[0] or row[0] < 0:
        pytest.fail("the workers must reach PostgreSQL over TCP (a host in DATABASE_URL)")
    port = f":{row[0]:04X}"
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            columns = line.split()
            if columns[1].endswith(port):
                inodes.add(f"socket:[{columns[9]}]")
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) in inodes:
                return int(fd.parent.parent.name)
        except OSError:
            continue
    pytest.fail(f"no process holds database session {backend_pid}")


# --- What must hold after every fault -----------------------------------------------------------
def assert_nothing_lost_or_doubled() -> None:
    """0 posts lost or decided twice, 0 duplicate orders, replies or charges, every unit held
    by an order that holds stock (none leaked, none held for an order that let go), and none
    held past the give-up time."""
    brand = SandboxUser.objects.get(handle=BRAND)
    addressed = set(
        SandboxPost.objects.filter(mentions=brand)
        .exclude(author=brand)
        .values_list("pk", flat=True)
    )
    stored = dict(Post.objects.filter(platform="sandbox").values_list("post_id", "outcome"))
    lost = sorted(pk for pk in addressed if str(pk) not in stored)
    undecided = sorted(post_id for post_id, outcome in stored.items() if not outcome)
    assert not lost, f"posts never stored in the inbox: {lost}"
    assert not undecided, f"posts never decided: {undecided}"

    # One order per purchase post is a constraint; one per buyer and campaign is the rule.
    per_buyer = (
        Order.objects.values("cardholder_id", "campaign_id").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not per_buyer.exists(), f"buyers with two orders: {list(per_buyer)}"

    # Replies: one per post and kind is a constraint; the platform must have each reply once.
    sandbox_replies = Counter(
        SandboxPost.objects.filter(author=brand).values_list("in_reply_to_id", "text")
    )
    doubled = {key: n for key, n in sandbox_replies.items() if n > 1}
    assert not doubled, f"replies posted twice on the platform: {doubled}"
    # A sender posts, then records the reply as sent in its own transaction (a crash between the
    # two is recovered when its claim lapses): the two agree once the senders are done, not at
    # every instant. A paid order's reply can be between the two steps right now.
    try:
        wait_for(
            lambda: (
                Reply.objects.filter(status="sent").count()
                == SandboxPost.objects.filter(author=brand).count()
            ),
            "every reply posted on the platform to be recorded as sent",
            timeout=45,
        )
    except pytest.fail.Exception as exc:  # which reply, and where it stands
        replies = list(
            Reply.objects.values_list(
                "in_reply_to__post_id", "kind", "status", "attempts", "claimed_until", "last_error"
            )
        )
        posted = list(sandbox_replies)
        pytest.fail(f"{exc}; replies {replies}; on the platform {posted}")

    # Charges: each hold on a card belongs to an order that is paid (or further), exactly once.
    authorized = Counter(
        SandboxLedgerEntry.objects.filter(operation="authorize", approved=True).values_list(
            "reference", flat=True
        )
    )
    assert all(n == 1 for n in authorized.values())
    voided = set(
        SandboxLedgerEntry.objects.filter(operation="void").values_list("reference", flat=True)
    )
    holds = set(authorized) - voided
    paid = set(
        Order.objects.filter(
            status__in=[
                OrderStatus.PAID,
                OrderStatus.SHIPPED,
                OrderStatus.DELIVERED,
                OrderStatus.PARTIALLY_REFUNDED,
                OrderStatus.REFUNDED,
            ]
        ).values_list("payment_reference", flat=True)
    )
    assert holds == paid, f"holds without a paid order: {holds - paid}; paid: {paid - holds}"

    for campaign in Campaign.objects.all():
        holding = Order.objects.filter(holds_stock(), campaign=campaign).count()
        assert campaign.stock_reserved == holding, (
            f"campaign {campaign.hashtag}: {campaign.stock_reserved} units reserved, "
            f"{holding} orders hold one"
        )
    assert_no_unit_held_past_give_up()


def assert_no_unit_held_past_give_up() -> None:
    """No pending order is still waiting for its confirmation request past the give-up time
    (HASHCART_CONFIRMATION_REQUEST_GIVE_UP_HOURS of the workers)."""
    give_up = timezone.now() - timedelta(hours=GIVE_UP_HOURS)
    stuck = Order.objects.filter(
        status=OrderStatus.PENDING, expires_at__isnull=True, created_at__lt=give_up
    )
    assert not stuck.exists(), f"units held past the give-up time: {list(stuck)}"


def status_now() -> Any:
    return pipeline_status(now=timezone.now())


def everything_decided() -> bool:
    return Post.objects.exists() and not Post.objects.filter(outcome="").exists()


def confirm_every_pending_order(*, paid: int) -> None:
    """Each buyer with a pending order posts its confirmation once the request is out; then
    wait until ``paid`` orders are paid and none is left confirmed.

    The orders are waited for first: a purchase posted just before may not be decided yet, and
    confirming "every pending order" then missed it (the sender-killed test timed out so, now
    and then, for a long time)."""
    wait_for(lambda: Order.objects.count() >= paid, f"{paid} order(s) to be created")
    wait_for(
        lambda: (
            not Order.objects.filter(status=OrderStatus.PENDING, expires_at__isnull=True).exists()
        ),
        "every confirmation request to be posted",
    )
    for order in Order.objects.filter(status=OrderStatus.PENDING):
        sandbox_post_create(
            handle=order.author_handle,
            text=f"@{BRAND} #Confirm{order.confirmation_code}",
            now=timezone.now(),
        )
    try:
        wait_for(
            lambda: (
                Order.objects.filter(status=OrderStatus.PAID).count() == paid
                and not Order.objects.filter(status=OrderStatus.CONFIRMED).exists()
            ),
            f"{paid} order(s) to be paid",
            # A loaded machine (the whole suite on two cores) has taken more than a minute here.
            timeout=120,
        )
    except pytest.fail.Exception as exc:  # say where the orders stand, for the one who reads it
        orders = list(Order.objects.values_list("pk", "status"))
        payments = list(
            PaymentOperation.objects.values_list(
                "order_id", "operation", "status", "attempts", "last_error"
            )
        )
        posts = list(Post.objects.values_list("author_handle", "text", "outcome"))
        pytest.fail(f"{exc}; orders {orders}; payments {payments}; posts {posts}")


@contextmanager
def campaign_row_held(campaign_id: int) -> Iterator[None]:
    """Hold a campaign's row lock on a connection of its own, as a long transaction would:
    a decision batch that reaches the campaign waits there, in the middle of its transaction,
    while this test's own connection goes on committing posts."""
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=False
    ) as holder:
        holder.execute("SELECT 1 FROM catalog_campaign WHERE id = %s FOR UPDATE", [campaign_id])
        yield
        holder.rollback()
