"""The outbox toolkit: leases taken by compare-and-set, given up only by their holder, and the
retry policy of every outbox from one settings table (DESIGN §5, STYLE §14).

A row of work (a reply, a payment operation, an e-mail, a feed's cursor, a shipment's label) is
claimed by one conditional UPDATE that only one claimer can win: the row is free, or its lease
lapsed (its holder died). The winner gets a ``Lease``, which names it by the lease's end
(``claimed_until``) or, on tables that keep one, by a token. Every later write of the holder goes
through the lease, so it changes the row only while the lease is still its own: a worker whose
lease lapsed and was taken over writes nothing.

How long a lease lasts, how retries back off and when they stop is ``HASHCART["OUTBOX"][name]``
(``policy(name)``), documented entry by entry in ``config/settings/base.py``.

Generic on purpose: no app is imported here, and the callers say which columns hold the lease
and which statuses mean "free" and "held".
"""

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import models
from django.db.models import Q, QuerySet

M = TypeVar("M", bound=models.Model)

# Backoff doubles at most this many times (2**60 seconds is far past any cap).
_MAX_DOUBLINGS = 60


# --- Policy -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    """One outbox's lease and retry rules (an entry of ``HASHCART["OUTBOX"]``).

    ``lease_seconds``: how long a claim lasts before another worker may take the row over.
    ``first_delay_seconds``, ``max_delay_seconds``: the wait after the first failed attempt, then
    doubled after each further one, never over the cap (0 and 0: retried at the next sweep).
    ``max_attempts``: failed for good after this many attempts (None: no limit by count).
    ``give_up_after_seconds``: failed for good this long after the work was queued (None: no
    limit by age); a mapping gives one age per kind of work (say, per payment operation).
    """

    lease_seconds: float
    first_delay_seconds: float = 0
    max_delay_seconds: float = 0
    max_attempts: int | None = None
    give_up_after_seconds: float | Mapping[str, float] | None = None

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt (1 for the first): the first delay,
        doubled per attempt since, capped at ``max_delay_seconds``."""
        if attempts < 1:
            return timedelta(0)
        doubled = self.first_delay_seconds * 2 ** min(attempts - 1, _MAX_DOUBLINGS)
        return timedelta(seconds=min(self.max_delay_seconds, doubled))

    def retry_at(
        self, *, attempts: int, now: datetime, give_up_at: datetime | None = None
    ) -> datetime:
        """When to try again after the ``attempts``-th failure; never after ``give_up_at`` (the
        last try is made at the deadline, not skipped)."""
        at = now + self.delay(attempts)
        return at if give_up_at is None else min(at, give_up_at)

    def exhausted(self, attempts: int) -> bool:
        """Whether ``attempts`` attempts are all the policy allows."""
        return self.max_attempts is not None and attempts >= self.max_attempts

    def give_up_after(self, kind: str = "") -> timedelta | None:
        """How long work (of ``kind``, when the policy sets an age per kind) is retried."""
        after = self.give_up_after_seconds
        if isinstance(after, Mapping):
            after = after[kind]
        return None if after is None else timedelta(seconds=after)

    def give_up_at(self, since: datetime, kind: str = "") -> datetime | None:
        """When retrying work queued (or otherwise started) at ``since`` stops, or None."""
        after = self.give_up_after(kind)
        return None if after is None else since + after


def policy(name: str) -> Policy:
    """The policy of outbox ``name`` from ``HASHCART["OUTBOX"]``, read at each call (tests and
    operators may change the settings). Raises ``KeyError`` for an unknown outbox and
    ``TypeError`` for an entry with an unknown field."""
    return Policy(**settings.HASHCART["OUTBOX"][name])


# --- Leases -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lease:
    """A claim held on rows: whose it is, by the lease column's value (``until``) or, where the
    table keeps one, by the holder's ``token``; ``held`` is what the rows look like while held
    (say ``status="processing"``).

    Every write made through it (``update``, ``release``) is conditional on the lease still
    being this one, and returns how many rows it changed: 0 means the lease lapsed and another
    worker holds the rows now (or gave them back), and nothing was written.
    """

    field: str
    until: datetime
    token_field: str | None = None
    token: str = ""
    held: Q = dataclasses.field(default_factory=Q)

    def ours(self, rows: QuerySet[M]) -> QuerySet[M]:
        """``rows`` narrowed to those this lease still holds."""
        mine = {self.token_field: self.token} if self.token_field else {self.field: self.until}
        return rows.filter(self.held, **mine)

    def update(self, rows: QuerySet[M], **values: Any) -> int:
        """Write ``values`` to the rows still ours, keeping the lease (a write that moves the
        lease column itself, to hold the rows longer, needs a token to stay ours)."""
        return self.ours(rows).update(**values)

    def release(self, rows: QuerySet[M], **values: Any) -> int:
        """Write ``values`` to the rows still ours and give the lease up (the lease column, and
        the token, cleared), in one conditional UPDATE."""
        cleared: dict[str, Any] = {self.field: None}
        if self.token_field:
            cleared[self.token_field] = ""
        return self.ours(rows).update(**{**cleared, **values})


def claim(
    rows: QuerySet[M],
    *,
    now: datetime,
    lease: timedelta,
    field: str = "claimed_until",
    token_field: str | None = None,
    free: Q | None = None,
    held: Q | None = None,
    values: Mapping[str, Any] | None = None,
) -> Lease | None:
    """Claim ``rows`` by compare-and-set: one conditional UPDATE takes every row of ``rows``
    that is ``free`` (default: no lease at all), or ``held`` (default: any row) with a lease
    that lapsed before ``now``; it sets the lease to end at ``now + lease``, a fresh token in
    ``token_field`` if given, and ``values`` (say the "held" status and an attempt counted).

    Returns the ``Lease`` if the UPDATE took any row, else None (another claimer holds them, or
    they are not claimable). Two claimers at once: the database's row lock orders the UPDATEs,
    the second re-checks the condition against the first's write and takes nothing. Runs in the
    caller's transaction, if any (outside one, the claim commits at once).
    """
    until = now + lease
    token = uuid.uuid4().hex if token_field else ""
    stamp: dict[str, Any] = {field: until}
    if token_field:
        stamp[token_field] = token
    taken = rows.filter(claimable(now=now, field=field, free=free, held=held)).update(
        **{**dict(values or {}), **stamp}
    )
    if not taken:
        return None
    held = Q() if held is None else held
    return Lease(field=field, until=until, token_field=token_field, token=token, held=held)


def claimable(
    *, now: datetime, field: str = "claimed_until", free: Q | None = None, held: Q | None = None
) -> Q:
    """The rows ``claim`` would take at ``now`` (for listing the work that is due): ``free``
    ones (default: no lease at all), and ``held`` ones (default: any) whose lease lapsed."""
    free = Q(**{f"{field}__isnull": True}) if free is None else free
    held = Q() if held is None else held
    return free | (held & Q(**{f"{field}__lt": now}))


def reclaim(
    rows: QuerySet[M],
    *,
    now: datetime,
    held: Q,
    field: str = "claimed_until",
    values: Mapping[str, Any] | None = None,
) -> list[int]:
    """Take back the rows of ``rows`` still ``held`` with a lease that lapsed before ``now``
    (their holder died): each is given ``values`` (say, back to "queued") and its lease cleared,
    by compare-and-set on its lease, so a holder whose lease was renewed meanwhile keeps it.
    Returns the ids taken back, in id order."""
    lapsed = rows.filter(held, **{f"{field}__lt": now})
    taken = []
    for pk, until in lapsed.order_by("pk").values_list("pk", field):
        lease = Lease(field=field, until=until, held=held)
        if lease.release(rows.filter(pk=pk), **dict(values or {})):
            taken.append(pk)
    return taken
