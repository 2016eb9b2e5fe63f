"""The brand account's OAuth 2.0 user token for X, refreshed under a lock (issue 6).

X's refresh tokens are single-use and rotate: two workers refreshing at once would burn the
token and lock the account out. So the refresh happens under the account row's lock, and the
credentials are read again under it: the second caller finds the first one's new token
(``social.platforms.sessions``, shared with Bluesky's sessions).
"""

from datetime import UTC, datetime, timedelta

import requests
from django.conf import settings

from social.platforms.base import AccountAuthError, TransientError
from social.platforms.sessions import session_credentials

EARLY = timedelta(seconds=60)  # refresh a minute before expiry


def _fresh(credentials: dict, now: datetime) -> bool:
    expires_at = str(credentials.get("expires_at") or "")
    if not credentials.get("access_token") or not expires_at:
        return False
    return datetime.fromisoformat(expires_at) - EARLY > now


def x_access_token(*, account_id: int, now: datetime, session: requests.Session) -> str:
    """A valid access token for the account, refreshing it (once, under a lock) if needed
    (``social.platforms.sessions``).

    Raises ``AccountAuthError`` when the account has no credentials or X refuses the refresh
    token (the account must be authorised again), ``TransientError`` when X cannot be reached.
    """

    def refresh(credentials: dict) -> dict:
        if not credentials.get("refresh_token"):
            raise AccountAuthError("The X account has no credentials: authorise it again.")
        app = (settings.SOCIALACCOUNT_PROVIDERS["twitter_oauth2"]["APPS"] or [{}])[0]
        client_id, secret = app.get("client_id", ""), app.get("secret", "")
        form = {"grant_type": "refresh_token", "refresh_token": credentials["refresh_token"]}
        try:
            # A confidential client (one with a secret) authenticates with HTTP Basic, as X
            # requires; a public client names itself in the form.
            response = session.post(
                settings.X_API_BASE_URL.rstrip("/") + "/2/oauth2/token",
                data=form if secret else {**form, "client_id": client_id},
                auth=(client_id, secret) if secret else None,
                timeout=(5, 20),
            )
        except requests.RequestException as exc:
            raise TransientError(f"X token endpoint unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise TransientError(f"X token endpoint answered {response.status_code}")
        if response.status_code != 200:
            raise AccountAuthError("X refused the refresh token: authorise the account again.")
        body = response.json()
        return {
            **credentials,
            "access_token": body["access_token"],
            "refresh_token": body.get("refresh_token", credentials["refresh_token"]),
            "expires_at": (
                datetime.now(tz=UTC) + timedelta(seconds=int(body.get("expires_in", 7200)))
            ).isoformat(),
        }

    credentials = session_credentials(account_id=account_id, now=now, fresh=_fresh, renew=refresh)
    return str(credentials["access_token"])
