"""Linking by posting a one-time code: the pipeline binds the author's platform id (DESIGN §6)."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from accounts.models import AccountEvent, LinkCode, SocialIdentity
from accounts.services import cardholder_upsert, identity_link, link_code_issue
from core.exceptions import ApplicationError
from sandbox.services import sandbox_user_ensure
from social.models import Post
from tests.shop import BRAND, post, shop_open, tick

pytestmark = pytest.mark.django_db


def _outcome(sandbox_post) -> str:
    return Post.objects.get(post_id=str(sandbox_post.pk)).outcome


def _code(email="carol@example.com"):
    cardholder = cardholder_upsert(email=email, password="pw-carol")
    return cardholder, link_code_issue(
        cardholder=cardholder, platform="sandbox", now=timezone.now()
    )


def test_posting_the_code_links_the_author_and_starts_the_cooling_off(
    django_capture_on_commit_callbacks,
):
    shop_open()
    cardholder, code = _code()
    with django_capture_on_commit_callbacks(execute=True):
        linking = post("carol_posts", f"@{BRAND} #Link{code.code}")
        tick()
    assert _outcome(linking) == "linked"
    identity = SocialIdentity.objects.get(cardholder=cardholder)
    carol = sandbox_user_ensure(handle="carol_posts")
    assert (identity.platform_user_id, identity.handle) == (str(carol.pk), "carol_posts")
    code.refresh_from_db()
    assert code.claimed_at is not None
    assert code.identity == identity
    assert [m.subject for m in mail.outbox] == ["Hashcart: @carol_posts is now linked"]
    assert AccountEvent.objects.filter(cardholder=cardholder, kind="identity_linked").exists()
    # Linked just now: a purchase post is blocked by the cooling-off period.
    buying = post("carol_posts", f"@{BRAND} #BuyKindleFireHD")
    tick()
    assert _outcome(buying) == "blocked"


def test_the_code_matches_whatever_its_case():
    shop_open()
    _, code = _code()
    linking = post("carol_posts", f"@{BRAND} #link{code.code.lower()}")
    tick()
    assert _outcome(linking) == "linked"


def test_an_identity_held_by_someone_else_is_refused_and_its_holder_told(
    django_capture_on_commit_callbacks,
):
    shop_open()
    owner = cardholder_upsert(email="owner@example.com", password="pw-owner")
    carol_user = sandbox_user_ensure(handle="carol_posts")
    identity_link(
        cardholder=owner,
        platform="sandbox",
        platform_user_id=str(carol_user.pk),
        handle="carol_posts",
        now=timezone.now(),
    )
    _, code = _code("intruder@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        linking = post("carol_posts", f"@{BRAND} #Link{code.code}")
        tick()
    assert _outcome(linking) == "link_refused"
    assert SocialIdentity.objects.get().cardholder == owner
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["owner@example.com"], "Hashcart: Someone tried to link @carol_posts")
    ]
    code.refresh_from_db()
    assert code.refused_reason == "That account is already linked to another Hashcart cardholder."


def test_an_expired_or_used_or_made_up_code_links_nothing():
    shop_open()
    start = timezone.now() - timedelta(hours=1)
    with time_machine.travel(start, tick=False):
        cardholder, code = _code()
    with time_machine.travel(start + timedelta(minutes=16), tick=False):
        late = post("carol_posts", f"@{BRAND} #Link{code.code}")
        made_up = post("dave", f"@{BRAND} #LinkZZZZZZ")
        tick()
    assert (_outcome(late), _outcome(made_up)) == ("link_unknown", "link_unknown")
    assert not SocialIdentity.objects.exists()

    fresh = link_code_issue(cardholder=cardholder, platform="sandbox", now=timezone.now())
    assert fresh.code != code.code
    first = post("carol_posts", f"@{BRAND} #Link{fresh.code}")
    again = post("eve", f"@{BRAND} #Link{fresh.code}")
    tick()
    assert (_outcome(first), _outcome(again)) == ("linked", "link_unknown")
    assert SocialIdentity.objects.get().handle == "carol_posts"


def test_a_campaign_hashtag_that_looks_like_a_link_code_stays_a_purchase():
    shop_open(hashtag="LinkinPark")  # "link" + six letters
    buying = post("nobody", f"@{BRAND} #LinkinPark")
    tick()
    assert _outcome(buying) == "not_linked"


def test_codes_are_rationed():
    cardholder = cardholder_upsert(email="carol@example.com", password="pw")
    now = timezone.now()
    first = link_code_issue(cardholder=cardholder, platform="sandbox", now=now)
    assert link_code_issue(cardholder=cardholder, platform="sandbox", now=now) == first
    for minute in range(1, 6):
        LinkCode.objects.filter(cardholder=cardholder).update(expires_at=now)
        link_code_issue(
            cardholder=cardholder, platform="sandbox", now=now + timedelta(minutes=minute)
        )
    LinkCode.objects.filter(cardholder=cardholder).update(expires_at=now)
    with pytest.raises(ApplicationError, match="Too many link codes"):
        link_code_issue(cardholder=cardholder, platform="sandbox", now=now + timedelta(minutes=7))
