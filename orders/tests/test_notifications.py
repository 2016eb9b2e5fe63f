"""The e-mail outbox, the one channel for orders' and accounts' e-mails: queued once per key in
the change's transaction, sent by a claim, retried after a failure, failed loudly at the end."""

import logging
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends import locmem
from django.db import transaction
from django.utils import timezone

from accounts.services import account_email
from accounts.tests.factories import CardholderFactory
from orders.models import Notification, OutboxStatus
from orders.services import notifications_send_due
from orders.services.notifications import email_queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp_down(monkeypatch):
    """The e-mail backend failing ``times`` times with an ``OSError`` (SMTP's errors are ones),
    then sending."""
    send = locmem.EmailBackend.send_messages

    def down(times: int) -> None:
        left = [times]

        def send_messages(backend, messages):
            if left[0]:
                left[0] -= 1
                raise OSError("connection refused")
            return send(backend, messages)

        monkeypatch.setattr(locmem.EmailBackend, "send_messages", send_messages)

    return down


def test_an_account_email_is_queued_without_an_order_and_sent_on_commit(
    django_capture_on_commit_callbacks,
):
    cardholder = CardholderFactory()
    with django_capture_on_commit_callbacks(execute=True):
        account_email(cardholder=cardholder, subject="A card was added", body="Was it you?")
        assert mail.outbox == []  # not before the commit
    row = Notification.objects.get()
    assert (row.order, row.kind, row.status, row.attempts) == (None, "account", "done", 1)
    assert [(m.to, m.subject) for m in mail.outbox] == [
        ([cardholder.user.email], "Hashcart: A card was added")
    ]


def _change_that_fails(cardholder) -> None:
    with transaction.atomic():
        account_email(cardholder=cardholder, subject="Linked", body="...")
        raise RuntimeError("the change fails")


def test_a_rolled_back_change_emails_nothing(django_capture_on_commit_callbacks):
    cardholder = CardholderFactory()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        _change_that_fails(cardholder)
    assert not Notification.objects.exists()
    assert mail.outbox == []


def test_an_account_email_that_fails_at_commit_is_sent_by_the_sweep(
    django_capture_on_commit_callbacks, smtp_down
):
    smtp_down(1)
    cardholder = CardholderFactory()
    with django_capture_on_commit_callbacks(execute=True):
        account_email(cardholder=cardholder, subject="Linked", body="...")
    row = Notification.objects.get()
    assert (row.status, row.attempts, row.last_error) == (
        "pending",
        1,
        "OSError: connection refused",
    )
    assert mail.outbox == []
    assert notifications_send_due(now=timezone.now()) == 1
    assert Notification.objects.get().status == "done"
    assert [m.subject for m in mail.outbox] == ["Hashcart: Linked"]


def test_an_email_is_queued_once_per_key():
    cardholder = CardholderFactory()
    for _ in range(2):
        email_queue(key="paid:1", cardholder=cardholder, kind="paid", message=("Paid", "..."))
    assert Notification.objects.count() == 1
    assert notifications_send_due(now=timezone.now()) == 1
    assert notifications_send_due(now=timezone.now()) == 0  # twice: sent once
    assert len(mail.outbox) == 1


def test_an_email_failing_at_every_attempt_fails_after_the_last_one(smtp_down, caplog):
    smtp_down(100)
    email_queue(key="k", cardholder=CardholderFactory(), kind="paid", message=("Paid", "..."))
    now = timezone.now()
    with caplog.at_level(logging.ERROR):
        for _ in range(6):
            notifications_send_due(now=now)
    row = Notification.objects.get()
    assert (row.status, row.attempts) == (OutboxStatus.FAILED, 5)
    assert f"e-mail {row.pk} (paid) failed after 5 attempts" in caplog.text


def test_an_email_whose_sender_died_is_sent_once_its_claim_lapses():
    email_queue(key="k", cardholder=CardholderFactory(), kind="paid", message=("Paid", "..."))
    now = timezone.now()
    Notification.objects.update(status=OutboxStatus.PROCESSING, claimed_until=now)
    assert notifications_send_due(now=now) == 0  # still held
    assert notifications_send_due(now=now + timedelta(seconds=1)) == 1
    assert len(mail.outbox) == 1


def test_urgent_emails_go_before_a_backlog_of_others():
    """A reminder or a privately sent confirmation request is worth something for minutes: a
    sold-out sale's thousand waitlist e-mails queued before it must not make it late."""
    cardholder = CardholderFactory()
    for n in range(3):
        email_queue(
            key=f"waitlisted:{n}", cardholder=cardholder, kind="waitlisted", message=(f"W{n}", ".")
        )
    email_queue(key="reminder:1", cardholder=cardholder, kind="reminder", message=("R", "."))
    email_queue(key="private:1", cardholder=cardholder, kind="private_request", message=("P", "."))

    assert notifications_send_due(now=timezone.now(), limit=3) == 3

    assert [m.subject for m in mail.outbox] == ["R", "P", "W0"]
