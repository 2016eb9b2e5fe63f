"""Connecting X with OAuth 2.0, PKCE and state, against mocked token and profile endpoints.

The mocked token endpoint behaves as X's does: it issued each authorization code for the
``code_challenge`` of the request that asked for it, and only the matching ``code_verifier``
redeems it.
"""

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import SocialIdentity
from accounts.services import cardholder_upsert, identity_link

pytestmark = pytest.mark.django_db

TOKEN_URL = "https://api.x.com/2/oauth2/token"
PROFILE_URL = "https://api.x.com/2/users/me"
X_USER = {"id": "2244994945", "name": "X Developers", "username": "XDevelopers"}


@pytest.fixture(autouse=True)
def x_app(settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "twitter_oauth2": {
            "APPS": [{"client_id": "hashcart-client", "secret": "hashcart-secret"}],
            "OAUTH_PKCE_ENABLED": True,
        }
    }


class FakeX:
    """X's authorization server and API, as far as the connect flow uses them."""

    def __init__(self, mocked: responses.RequestsMock) -> None:
        self.challenges: dict[str, str] = {}  # authorization code -> code_challenge
        self.token_requests = 0
        mocked.add_callback(responses.POST, TOKEN_URL, callback=self.token)
        mocked.add(responses.GET, PROFILE_URL, json={"data": X_USER})

    def authorize(self, location: str, code: str = "x-auth-code") -> str:
        """What X does when the person approves: the code, bound to the request's challenge."""
        query = parse_qs(urlsplit(location).query)
        assert query["code_challenge_method"] == ["S256"]
        self.challenges[code] = query["code_challenge"][0]
        return query["state"][0]

    def token(self, request):
        self.token_requests += 1
        form = parse_qs(request.body)
        verifier = form.get("code_verifier", [""])[0]
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if self.challenges.get(form.get("code", [""])[0]) != challenge:
            return 400, {}, '{"error": "invalid_request", "error_description": "bad verifier"}'
        return 200, {}, '{"access_token": "x-access", "token_type": "bearer", "expires_in": 7200}'


def _cardholder_client(email="carol@example.com"):
    cardholder = cardholder_upsert(email=email, password="pw-carol-123")
    client = Client()
    client.force_login(cardholder.user)
    return cardholder, client


def _start(client) -> str:
    response = client.post(
        reverse("twitter_oauth2_login"), {"process": "connect", "next": reverse("accounts:link")}
    )
    assert response.status_code == 302
    assert response["Location"].startswith("https://x.com/i/oauth2/authorize")
    return response["Location"]


def _callback(client, **params):
    return client.get(reverse("twitter_oauth2_callback"), params)


def test_connecting_x_links_the_x_user_id(django_capture_on_commit_callbacks):
    cardholder, client = _cardholder_client()
    with django_capture_on_commit_callbacks(execute=True), responses.RequestsMock() as mocked:
        x = FakeX(mocked)
        state = x.authorize(_start(client))
        response = _callback(client, code="x-auth-code", state=state)
    assert response.status_code == 302
    identity = SocialIdentity.objects.get(platform="x")
    assert (identity.cardholder, identity.platform_user_id, identity.handle) == (
        cardholder,
        "2244994945",
        "XDevelopers",
    )
    assert "Hashcart: @XDevelopers is now linked" in [m.subject for m in mail.outbox]


@pytest.mark.parametrize("state", [None, "not-the-state-we-sent"], ids=["missing", "mismatched"])
def test_a_missing_or_mismatched_state_links_nothing(state):
    _, client = _cardholder_client()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        x = FakeX(mocked)
        x.authorize(_start(client))
        params = {"code": "x-auth-code"} | ({"state": state} if state else {})
        _callback(client, **params)
        assert x.token_requests == 0  # the code is never even redeemed
    assert not SocialIdentity.objects.exists()


def test_a_code_issued_for_another_pkce_challenge_links_nothing():
    # An authorization code injected from someone else's flow: our verifier cannot redeem it.
    _, client = _cardholder_client()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        x = FakeX(mocked)
        state = x.authorize(_start(client))
        x.challenges["stolen-code"] = "challenge-of-the-attackers-verifier"
        _callback(client, code="stolen-code", state=state)
        assert x.token_requests == 1
    assert not SocialIdentity.objects.exists()


def test_an_x_account_linked_to_someone_else_is_refused_and_they_are_told(
    django_capture_on_commit_callbacks,
):
    owner = cardholder_upsert(email="owner@example.com", password="pw-owner-123")
    identity_link(
        cardholder=owner,
        platform="x",
        platform_user_id="2244994945",
        handle="XDevelopers",
        now=owner.created_at,
    )
    _, client = _cardholder_client()
    with (
        django_capture_on_commit_callbacks(execute=True),
        responses.RequestsMock() as mocked,
    ):
        x = FakeX(mocked)
        state = x.authorize(_start(client))
        response = _callback(client, code="x-auth-code", state=state)
    assert response["Location"] == reverse("accounts:link_identity")
    assert SocialIdentity.objects.get(platform="x").cardholder == owner
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["owner@example.com"], "Hashcart: Someone tried to link @XDevelopers")
    ]


def test_x_never_signs_anyone_in():
    client = Client()
    response = client.post(reverse("twitter_oauth2_login"), {"process": "login"})
    # Not signed in: the flow may start, but its end is refused (pre_social_login).
    with responses.RequestsMock() as mocked:
        x = FakeX(mocked)
        state = x.authorize(response["Location"])
        result = _callback(client, code="x-auth-code", state=state)
    assert result["Location"] == reverse("account_login")
    assert not SocialIdentity.objects.exists()


def test_unlinking_x_lets_it_be_connected_again(django_capture_on_commit_callbacks):
    from django.utils import timezone

    from accounts.services import identity_unlink

    cardholder, client = _cardholder_client()
    with responses.RequestsMock() as mocked:
        x = FakeX(mocked)
        state = x.authorize(_start(client))
        _callback(client, code="x-auth-code", state=state)
    identity = SocialIdentity.objects.get(platform="x")
    identity_unlink(cardholder=cardholder, identity_id=identity.pk, now=timezone.now())
    assert not SocialIdentity.objects.exists()
    with responses.RequestsMock() as mocked:
        x = FakeX(mocked)
        state = x.authorize(_start(client), code="second-code")
        _callback(client, code="second-code", state=state)
    assert SocialIdentity.objects.get(platform="x").cardholder == cardholder
