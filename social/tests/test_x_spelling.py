"""The X adapter follows the spelling X accepts (issue 15, item 3).

X is renaming "tweet" to "post" in its API. A fake X built from each specification accepts one
spelling and refuses the other with a 400 naming the refused parameter, in the problem shape of
that specification (v2.159: ``errors`` with ``parameters``; v2.167: ``parameter`` and ``value``).
A mentions read must succeed against either after at most one refused request, and remember
the spelling for the next read, in the cache every worker sees.
"""

import json
import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.core.cache import cache
from django.utils import timezone

from social.credentials import account_credentials_set
from social.models import PlatformAccount
from social.platforms.base import RejectedError
from social.platforms.x import XAdapter, spelling_for

BASE = "https://api.x.com"
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
# What each specification names that the other does not, in a mentions read.
FOREIGN = {
    "post": {"tweet.fields", "referenced_tweets.id"},  # refused by a "post" X
    "tweet": {"post.fields", "referenced_posts"},  # refused by a "tweet" X
}
PAGE = {
    "data": [
        {
            "id": "1900000000000000001",
            "text": "@Twitter #BuyKindleFireHD",
            "author_id": "1000",
            "created_at": "2026-12-01T14:59:00.000Z",
        }
    ],
    "meta": {"newest_id": "1900000000000000001", "result_count": 1},
}


def _refusal(accepts: str, name: str) -> dict:
    """X's invalid-request problem naming ``name``, as the specification of ``accepts`` has it."""
    if accepts == "post":  # v2.167
        return {
            "type": "https://api.x.com/2/problems/invalid-request",
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "parameter": name,
            "value": name,
        }
    return {  # v2.159, and X's answers as recorded by its users
        "type": "https://api.twitter.com/2/problems/invalid-request",
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "errors": [
            {
                "parameters": {name: ["created_at"]},
                "message": f"The query parameter [{name}] is not one of [id,max_results]",
            }
        ],
    }


class FakeX:
    """Mentions of one spelling only; counts what it refused."""

    def __init__(self, accepts: str) -> None:
        self.accepts, self.refused = accepts, 0

    def __call__(self, request):
        query = parse_qs(urlsplit(request.url).query)
        asked = set(query) | set(",".join(query.get("expansions", [])).split(","))
        foreign = sorted(asked & FOREIGN[self.accepts])
        if foreign:
            self.refused += 1
            return 400, {}, json.dumps(_refusal(self.accepts, foreign[0]))
        return 200, {}, json.dumps(PAGE)


@pytest.fixture
def account(db):
    cache.clear()
    acct = PlatformAccount.objects.create(platform="x", platform_user_id="783214", handle="Twitter")
    account_credentials_set(
        account_id=acct.pk,
        credentials={
            "access_token": "live-token",
            "refresh_token": "refresh-1",
            "expires_at": (timezone.now() + timedelta(hours=1)).isoformat(),
        },
    )
    acct.refresh_from_db()
    return acct


def _serve(fake: FakeX) -> None:
    responses.add_callback(responses.GET, f"{BASE}/2/users/783214/mentions", callback=fake)


@pytest.mark.parametrize("accepts", ["post", "tweet"])
@responses.activate
def test_a_mentions_read_succeeds_after_at_most_one_refusal_and_the_choice_is_kept(
    account, accepts, caplog
):
    fake = FakeX(accepts)
    _serve(fake)
    with caplog.at_level(logging.WARNING, logger="social.platforms.x"):
        first = XAdapter().fetch_mentions(account=account, cursor="", now=NOW, limit=100)
    assert [p.post_id for p in first.posts] == ["1900000000000000001"]
    assert fake.refused == (1 if accepts == "post" else 0)  # "tweet" is asked first
    assert spelling_for(account) == accepts

    second = XAdapter().fetch_mentions(account=account, cursor="", now=NOW, limit=100)
    assert len(second.posts) == 1
    assert fake.refused == (1 if accepts == "post" else 0)  # remembered: no second refusal
    switched = [r.getMessage() for r in caplog.records if "from now on" in r.getMessage()]
    assert switched == (
        [
            "X account Twitter: the 'tweet' spelling was refused (X refused: 400 "
            "https://api.x.com/2/problems/invalid-request Invalid Request One or more parameters "
            "to your request was invalid.); asking in 'post' from now on"
        ]
        if accepts == "post"
        else []
    )


@responses.activate
def test_when_x_changes_back_the_adapter_follows_again(account):
    post_x = FakeX("post")
    _serve(post_x)
    XAdapter().fetch_mentions(account=account, cursor="", now=NOW, limit=100)
    assert spelling_for(account) == "post"
    responses.reset()
    tweet_x = FakeX("tweet")
    _serve(tweet_x)
    XAdapter().fetch_mentions(account=account, cursor="", now=NOW, limit=100)
    assert (tweet_x.refused, spelling_for(account)) == (1, "tweet")


@responses.activate
def test_a_forced_spelling_is_never_switched(account, settings):
    settings.X_FIELD_SPELLING = "tweet"
    fake = FakeX("post")
    _serve(fake)
    with pytest.raises(RejectedError, match="400"):
        XAdapter().fetch_mentions(account=account, cursor="", now=NOW, limit=100)
    assert fake.refused == 1
    assert spelling_for(account) == "tweet"


@responses.activate
def test_a_400_about_something_else_is_not_retried(account):
    calls = []

    def refuse(request):
        calls.append(request.url)
        problem = {
            "type": "https://api.x.com/2/problems/invalid-request",
            "title": "Invalid Request",
            "detail": "since_id must be a tweet id",
            "errors": [{"parameters": {"since_id": ["x"]}, "message": "bad since_id"}],
        }
        return 400, {}, json.dumps(problem)

    responses.add_callback(responses.GET, f"{BASE}/2/users/783214/mentions", callback=refuse)
    with pytest.raises(RejectedError):
        XAdapter().fetch_mentions(account=account, cursor="", now=NOW, limit=100)
    assert len(calls) == 1
    assert spelling_for(account) == "tweet"


@responses.activate
def test_the_spelling_is_remembered_per_account(account):
    other = PlatformAccount.objects.create(platform="x", platform_user_id="42", handle="Other")
    _serve(FakeX("post"))
    XAdapter().fetch_mentions(account=account, cursor="", now=NOW, limit=100)
    assert (spelling_for(account), spelling_for(other)) == ("post", "tweet")
