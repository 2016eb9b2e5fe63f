"""The brand account's Bluesky session: app-password login, refreshed under a lock (issue 15).

The account's credentials (``social.credentials``, encrypted) hold its handle or e-mail
(``identifier``; without one, the account's DID logs in, which a renamed handle does not
break) and an app password (``app_password``), and the session once made:
``access_jwt`` (about two hours) and ``refresh_jwt`` (single use: ``refreshSession`` answers
with a new one and burns the old). A session is made or refreshed once, under the account
row's lock (``social.platforms.sessions``, as X's tokens are), so two workers never spend one
refresh token twice.
"""

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from social.platforms.base import AccountAuthError, TransientError
from social.platforms.sessions import Credentials, session_credentials

EARLY = timedelta(seconds=60)  # refresh a minute before the access token expires
TIMEOUT = (5, 20)
CREATE_SESSION = "com.atproto.server.createSession"
REFRESH_SESSION = "com.atproto.server.refreshSession"


def jwt_expiry(token: str) -> datetime | None:
    """The ``exp`` of a JWT (read, not verified: the service verifies its own tokens)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.fromtimestamp(int(claims["exp"]), tz=UTC)
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def _fresh_unless(stale: str) -> Any:
    def fresh(credentials: Credentials, now: datetime) -> bool:
        token = str(credentials.get("access_jwt") or "")
        if not token or token == stale:
            return False
        expiry = jwt_expiry(token)
        # A token whose expiry cannot be read is used until the service says it expired.
        return expiry is None or expiry - EARLY > now

    return fresh


def bluesky_session(
    *,
    account_id: int,
    did: str,
    service_url: str,
    now: datetime,
    http: requests.Session,
    stale: str = "",
    rate_limited: Any = None,
) -> Credentials:
    """The account's credentials with a usable ``access_jwt``, made or refreshed if needed.

    ``stale``: an access token the service just refused as expired; credentials holding it are
    renewed (unless another caller did so meanwhile). The refresh token is tried first; when
    the service refuses it (expired, revoked, already used), the app password logs in anew.
    ``rate_limited(nsid, response)`` raises for a 429 (the adapter's cache of resets).

    Raises ``AccountAuthError`` when the account has no app password, the service refuses it,
    or it logs in to another account than ``did``; ``TransientError`` when the service cannot
    be reached or fails.
    """

    def post(nsid: str, **kwargs: Any) -> requests.Response:
        try:
            response = http.post(f"{service_url}/xrpc/{nsid}", timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise TransientError(f"Bluesky unreachable: {type(exc).__name__}") from exc
        if response.status_code == 429 and rate_limited is not None:
            rate_limited(nsid, response)
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"Bluesky {nsid} answered {response.status_code}")
        return response

    def renew(credentials: Credentials) -> Credentials:
        refresh = str(credentials.get("refresh_jwt") or "")
        response = None
        if refresh:
            response = post(REFRESH_SESSION, headers={"Authorization": f"Bearer {refresh}"})
        if response is None or response.status_code != 200:
            identifier = credentials.get("identifier") or did
            password = credentials.get("app_password")
            if not identifier or not password:
                raise AccountAuthError(
                    "The Bluesky account has no app password: set its credentials again."
                )
            response = post(CREATE_SESSION, json={"identifier": identifier, "password": password})
            if response.status_code != 200:
                raise AccountAuthError(
                    f"Bluesky refused the app password ({response.status_code}): "
                    "set the account's credentials again."
                )
        try:
            body = response.json()
            session = {"access_jwt": str(body["accessJwt"]), "refresh_jwt": str(body["refreshJwt"])}
            session_did = str(body["did"])
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientError("Bluesky answered a session without its tokens") from exc
        if did and session_did != did:
            raise AccountAuthError(
                f"The app password is of {session_did}, not of the brand account {did}."
            )
        return {**credentials, **session, "handle": str(body.get("handle") or "")}

    return session_credentials(
        account_id=account_id, now=now, fresh=_fresh_unless(stale), renew=renew
    )
