"""Two deciders at once, two purchase posts of one unlinked author (under two handles): one
invitation, on PostgreSQL (issue 13, item 5)."""

import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from devtools.bench_data import inbox_post
from orders.models import Invitation
from orders.services import posts_decide
from social.models import Post, Reply
from tests.shop import shop_open
from tests.waiting import someone_waits_on_a_lock, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _post(shop, post_id: str, handle: str) -> Post:
    row = inbox_post(
        account=shop.account,
        post_id=post_id,
        author_id="424242",
        handle=handle,
        text=f"@{shop.brand.handle} #{shop.campaign.hashtag}",
        posted_at=timezone.now(),
    )
    row.save()
    return row


def test_two_deciders_at_once_invite_an_author_once():
    """The first decider's invitation is inserted and not committed when the second decides:
    the second waits on the unique key, then finds its own post without an invitation."""
    shop = shop_open()
    first, second = _post(shop, "9100001", "before"), _post(shop, "9100002", "after")
    inserted, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def decide_first() -> None:
        try:
            with transaction.atomic():
                posts_decide(post_ids=[first.pk], now=timezone.now())
                inserted.set()
                release.wait(20)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    def decide_second() -> None:
        try:
            inserted.wait(20)
            posts_decide(post_ids=[second.pk], now=timezone.now())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide_first), threading.Thread(target=decide_second)]
    for thread in threads:
        thread.start()
    inserted.wait(20)
    wait_for(
        someone_waits_on_a_lock,
        "the second decider to wait for the first one's invitation",
        timeout=20,
    )
    release.set()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert set(
        Post.objects.filter(pk__in=[first.pk, second.pk]).values_list("outcome", flat=True)
    ) == {"not_linked"}
    assert list(Reply.objects.filter(kind="invite").values_list("in_reply_to_id", flat=True)) == [
        first.pk
    ]
    assert Invitation.objects.get().post_id == first.pk
