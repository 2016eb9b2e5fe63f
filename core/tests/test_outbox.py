"""The outbox toolkit on a table of its own: one claimer wins, a lapsed holder writes nothing,
backoff doubles up to its cap, and work is given up by count or by age.

The table is made for these tests (core has no models of its own, and imports no app); the
races run on PostgreSQL, each claimer on its own connection.
"""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection, models, transaction
from django.db.models import F, Q
from django.test.utils import isolate_apps

from core import outbox
from core.outbox import Lease, Policy

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)

with isolate_apps("core"):

    class Job(models.Model):
        status = models.CharField(max_length=16, default="pending")
        attempts = models.IntegerField(default=0)
        claimed_until = models.DateTimeField(null=True)
        lease_token = models.CharField(max_length=32, blank=True)
        note = models.CharField(max_length=32, blank=True)

        class Meta:
            app_label = "core"
            db_table = "core_test_outbox_job"

        def __str__(self) -> str:
            return f"job {self.pk} ({self.status})"


@pytest.fixture
def jobs(transactional_db) -> Iterator[type[Job]]:
    """The table, committed (so other connections see it), dropped afterwards."""
    with connection.schema_editor() as editor:
        editor.create_model(Job)
    yield Job
    with connection.schema_editor() as editor:
        editor.delete_model(Job)


def _claim(job: Job, now: datetime, **kwargs) -> Lease | None:
    return outbox.claim(Job._default_manager.filter(pk=job.pk), now=now, lease=LEASE, **kwargs)


PENDING, PROCESSING = Q(status="pending"), Q(status="processing")
AS_PAYMENTS = {
    "free": PENDING,
    "held": PROCESSING,
    "values": {"status": "processing", "attempts": F("attempts") + 1},
}


# --- Claims -----------------------------------------------------------------------------------
def test_a_claim_takes_a_free_row_and_a_second_claim_takes_nothing(jobs):
    job = jobs.objects.create()
    first = _claim(job, T0, **AS_PAYMENTS)
    assert first is not None
    assert first.until == T0 + LEASE
    assert _claim(job, T0 + timedelta(seconds=1), **AS_PAYMENTS) is None
    job.refresh_from_db()
    assert (job.status, job.attempts, job.claimed_until) == ("processing", 1, T0 + LEASE)


def test_a_lapsed_lease_is_taken_over_and_its_old_holder_then_writes_nothing(jobs):
    job = jobs.objects.create()
    dead = _claim(job, T0, **AS_PAYMENTS)
    later = T0 + LEASE + timedelta(seconds=1)
    alive = _claim(job, later, **AS_PAYMENTS)
    assert dead is not None
    assert alive is not None
    rows = jobs.objects.filter(pk=job.pk)

    # The first holder wakes up: neither its update nor its release changes anything.
    assert dead.update(rows, note="dead was here") == 0
    assert dead.release(rows, status="done") == 0
    job.refresh_from_db()
    assert (job.status, job.attempts, job.note) == ("processing", 2, "")
    assert job.claimed_until == later + LEASE

    assert alive.release(rows, status="done") == 1
    job.refresh_from_db()
    assert (job.status, job.claimed_until) == ("done", None)


def test_a_lease_held_by_token_survives_its_holder_moving_its_end(jobs):
    job = jobs.objects.create()
    rows = jobs.objects.filter(pk=job.pk)
    lease = _claim(job, T0, field="claimed_until", token_field="lease_token")
    assert lease is not None
    assert len(lease.token) == 32
    # A rate limit holds the row longer: still ours, by the token.
    assert lease.update(rows, claimed_until=T0 + timedelta(hours=1)) == 1
    assert _claim(job, T0 + LEASE * 2, token_field="lease_token") is None
    assert lease.release(rows, note="read") == 1
    job.refresh_from_db()
    assert (job.lease_token, job.claimed_until, job.note) == ("", None, "read")


def test_a_thief_of_a_token_lease_leaves_its_holder_nothing_to_write(jobs):
    job = jobs.objects.create()
    rows = jobs.objects.filter(pk=job.pk)
    lease = _claim(job, T0, token_field="lease_token")
    assert lease is not None
    rows.update(lease_token="thief")
    assert lease.release(rows, note="mine") == 0
    assert rows.get().note == ""


def test_rows_not_free_nor_held_are_never_claimed(jobs):
    done = jobs.objects.create(status="done", claimed_until=T0 - timedelta(days=1))
    assert _claim(done, T0, **AS_PAYMENTS) is None
    assert jobs.objects.get(pk=done.pk).status == "done"


def test_the_due_listing_shows_what_a_claim_would_take(jobs):
    pending = jobs.objects.create()
    lapsed = jobs.objects.create(status="processing", claimed_until=T0 - timedelta(seconds=1))
    jobs.objects.create(status="processing", claimed_until=T0 + timedelta(seconds=1))
    jobs.objects.create(status="done", claimed_until=T0 - timedelta(seconds=1))
    due = jobs.objects.filter(outbox.claimable(now=T0, free=PENDING, held=PROCESSING))
    assert sorted(due.values_list("pk", flat=True)) == [pending.pk, lapsed.pk]


def test_one_claim_takes_many_rows_and_each_is_released_on_its_own(jobs):
    a, b = jobs.objects.create(), jobs.objects.create()
    both = jobs.objects.filter(pk__in=[a.pk, b.pk])
    lease = outbox.claim(both, now=T0, lease=LEASE, **AS_PAYMENTS)
    assert lease is not None
    assert lease.release(jobs.objects.filter(pk=a.pk), status="done") == 1
    assert sorted(both.values_list("status", flat=True)) == ["done", "processing"]


def test_reclaim_takes_back_only_held_rows_whose_lease_lapsed(jobs):
    lapsed = jobs.objects.create(status="processing", claimed_until=T0 - timedelta(seconds=1))
    live = jobs.objects.create(status="processing", claimed_until=T0 + timedelta(seconds=1))
    queued = jobs.objects.create(status="pending", claimed_until=T0 - timedelta(seconds=1))
    taken = outbox.reclaim(
        jobs.objects.all(), now=T0, held=PROCESSING, values={"status": "pending"}
    )
    assert taken == [lapsed.pk]
    assert outbox.reclaim(jobs.objects.all(), now=T0, held=PROCESSING) == []  # twice: no more
    statuses = dict(jobs.objects.values_list("pk", "status"))
    assert statuses == {lapsed.pk: "pending", live.pk: "processing", queued.pk: "pending"}
    assert jobs.objects.get(pk=lapsed.pk).claimed_until is None


# --- Races on PostgreSQL ----------------------------------------------------------------------
@pytest.mark.postgres
def test_claimers_racing_for_one_row_one_wins(jobs):
    job = jobs.objects.create()
    claimers = 6
    barrier = threading.Barrier(claimers)
    leases: list[Lease | None] = []
    errors: list[BaseException] = []

    def claim() -> None:
        try:
            barrier.wait(timeout=30)
            leases.append(_claim(job, T0, **AS_PAYMENTS))
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len([lease for lease in leases if lease is not None]) == 1
    assert jobs.objects.get(pk=job.pk).attempts == 1


def _someone_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return bool(cursor.fetchone()[0])


@pytest.mark.postgres
def test_a_claimer_that_waited_on_the_winner_takes_nothing_once_the_winner_commits(jobs):
    """The second UPDATE blocks on the first's row lock, then re-checks its condition against
    the committed claim (READ COMMITTED) and changes nothing."""
    job = jobs.objects.create()
    second: list[Lease | None] = []

    def claim() -> None:
        try:
            second.append(_claim(job, T0, **AS_PAYMENTS))
        finally:
            connection.close()

    with transaction.atomic():
        first = _claim(job, T0, **AS_PAYMENTS)
        other = threading.Thread(target=claim)
        other.start()
        deadline = time.monotonic() + 20
        while not _someone_waits_on_a_lock():
            assert time.monotonic() < deadline, "the second claimer never waited"
            time.sleep(0.05)
    other.join(timeout=30)
    assert first is not None
    assert second == [None]
    assert jobs.objects.get(pk=job.pk).attempts == 1


# --- Policy -----------------------------------------------------------------------------------
def test_backoff_doubles_from_the_first_delay_up_to_the_cap():
    policy = Policy(lease_seconds=60, first_delay_seconds=2, max_delay_seconds=60)
    delays = [policy.delay(n).total_seconds() for n in range(0, 9)]
    assert delays == [0, 2, 4, 8, 16, 32, 60, 60, 60]
    assert policy.delay(10_000) == timedelta(seconds=60)  # no overflow after many failures


def test_no_backoff_retries_at_the_next_sweep():
    policy = Policy(lease_seconds=600, max_attempts=5)
    assert policy.retry_at(attempts=3, now=T0) == T0


def test_the_last_retry_is_at_the_deadline_not_after_it():
    policy = Policy(lease_seconds=60, first_delay_seconds=2, max_delay_seconds=3600)
    deadline = T0 + timedelta(seconds=5)
    assert policy.retry_at(attempts=1, now=T0, give_up_at=deadline) == T0 + timedelta(seconds=2)
    assert policy.retry_at(attempts=5, now=T0, give_up_at=deadline) == deadline


def test_work_is_given_up_after_its_last_attempt():
    policy = Policy(lease_seconds=60, max_attempts=3)
    assert [policy.exhausted(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
    assert not Policy(lease_seconds=60).exhausted(10_000)  # no limit by count


def test_work_is_given_up_by_age_and_by_age_per_kind():
    aged = Policy(lease_seconds=60, give_up_after_seconds=1800)
    assert aged.give_up_at(T0) == T0 + timedelta(minutes=30)
    per_kind = Policy(lease_seconds=60, give_up_after_seconds={"authorize": 60, "capture": 7200})
    assert per_kind.give_up_at(T0, "authorize") == T0 + timedelta(minutes=1)
    assert per_kind.give_up_at(T0, "capture") == T0 + timedelta(hours=2)
    assert Policy(lease_seconds=60).give_up_at(T0) is None


def test_each_outbox_keeps_todays_values(settings):
    assert outbox.policy("replies") == Policy(
        lease_seconds=120,
        first_delay_seconds=2,
        max_delay_seconds=3600,
        max_attempts=8,
        give_up_after_seconds=1800,
    )
    payments = outbox.policy("payments")
    assert (payments.lease_seconds, payments.delay(1), payments.delay(20)) == (
        120,
        timedelta(seconds=2),
        timedelta(minutes=30),
    )
    assert payments.give_up_after("authorize") == timedelta(minutes=60)
    assert payments.give_up_after("capture") == payments.give_up_after("void")
    assert payments.give_up_after("void") == timedelta(hours=120)
    assert outbox.policy("emails") == Policy(lease_seconds=600, max_attempts=5)
    assert outbox.policy("feeds").lease == timedelta(seconds=60)
    assert outbox.policy("labels").lease == timedelta(seconds=120)


def test_a_policy_is_read_from_the_settings_at_each_call(settings):
    settings.HASHCART = {
        **settings.HASHCART,
        "OUTBOX": {**settings.HASHCART["OUTBOX"], "labels": {"lease_seconds": 5}},
    }
    assert outbox.policy("labels").lease == timedelta(seconds=5)
    with pytest.raises(KeyError):
        outbox.policy("nothing")


def test_todays_environment_variables_still_set_the_policies():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "HASHCART_REPLY_CLAIM_SECONDS": "10",
        "HASHCART_REPLY_MAX_ATTEMPTS": "3",
        "HASHCART_REPLY_STALE_MINUTES": "5",
        "HASHCART_POLL_LEASE_SECONDS": "7",
        "HASHCART_PAYMENT_RETRY_MAX_DELAY_MINUTES": "1",
        "HASHCART_AUTHORIZATION_RETRY_MINUTES": "2",
        "HASHCART_AUTHORIZATION_HOLD_HOURS": "3",
        "HASHCART_REFUND_RETRY_HOURS": "4",
    }
    probe = (
        "import json, django; django.setup(); from core.outbox import policy as p;"
        "r, f, pay = p('replies'), p('feeds'), p('payments');"
        "print(json.dumps([r.lease_seconds, r.max_attempts, r.give_up_after_seconds,"
        " f.lease_seconds, pay.max_delay_seconds, pay.give_up_after_seconds]))"
    )
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        10,
        3,
        300,
        7,
        60,
        {"authorize": 120, "capture": 3 * 3600, "void": 3 * 3600, "refund": 4 * 3600},
    ]
