"""Linking social identities to cardholders (DESIGN §6, §8).

Two ways in: X's OAuth 2.0 (``accounts.adapters``), and on any platform a one-time code that the
cardholder posts as ``@<brand> #Link<CODE>``; the pipeline sees the post and calls
``link_claims_apply``. One identity links to one cardholder: a claim on an identity someone else
holds is refused, and that someone is told by e-mail. Every link starts the cooling-off period
in which purchase posts are blocked, and is e-mailed and logged.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from accounts.models import AccountEventKind, Cardholder, LinkCode, SocialIdentity
from accounts.services.notify import account_email, account_event
from core.codes import LINK_CODE
from core.exceptions import ApplicationError

LINK_PREFIX = "link"
# At most this many codes per cardholder per hour (a code is valid for 15 minutes).
CODES_PER_HOUR = 6


def link_code_issue(*, cardholder: Cardholder, platform: str, now: datetime) -> LinkCode:
    """The cardholder's open code for ``platform``, or a new one valid ``LINK_CODE_MINUTES``.

    Raises ``ApplicationError`` when the cardholder asked for too many codes in the last hour.
    """
    open_code = (
        LinkCode.objects.filter(
            cardholder=cardholder,
            platform=platform,
            claimed_at__isnull=True,
            refused_reason="",
            expires_at__gt=now + timedelta(minutes=2),
        )
        .order_by("-id")
        .first()
    )
    if open_code is not None:
        return open_code
    recent = LinkCode.objects.filter(
        cardholder=cardholder, created_at__gt=now - timedelta(hours=1)
    ).count()
    if recent >= CODES_PER_HOUR:
        raise ApplicationError("Too many link codes in the last hour: please try again later.")
    minutes = settings.HASHCART["LINK_CODE_MINUTES"]
    while True:
        code = LINK_CODE.generate()
        if not LinkCode.objects.filter(code=code).exists():
            break
    return LinkCode.objects.create(
        cardholder=cardholder,
        platform=platform,
        code=code,
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )


def identity_claim_refusal(
    *, cardholder: Cardholder, platform: str, platform_user_id: str, now: datetime
) -> str:
    """Why ``cardholder`` may not link this identity ("" if they may). When another cardholder
    holds it, that cardholder is e-mailed and the attempt is logged in their audit log."""
    holder = (
        SocialIdentity.objects.filter(platform=platform, platform_user_id=platform_user_id)
        .select_related("cardholder__user")
        .first()
    )
    if holder is None or holder.cardholder_id == cardholder.pk:
        return ""
    account_event(
        cardholder=holder.cardholder,
        kind=AccountEventKind.IDENTITY_LINK_REFUSED,
        summary=f"Someone else tried to link @{holder.handle} ({holder.get_platform_display()})",
        now=now,
        actor="pipeline",
    )
    account_email(
        cardholder=holder.cardholder,
        subject=f"Someone tried to link @{holder.handle}",
        body=(
            f"Someone tried to link @{holder.handle} on {holder.get_platform_display()} to "
            "another Hashcart account. It stays linked to yours and nothing changed.\n\n"
            "If that was you, unlink it from your settings page first. If it was not, you may "
            "want to change your password there.\n"
        ),
    )
    return "That account is already linked to another Hashcart cardholder."


def identity_link_and_tell(
    *,
    cardholder: Cardholder,
    platform: str,
    platform_user_id: str,
    handle: str,
    now: datetime,
    actor: str = "cardholder",
) -> SocialIdentity:
    """Link the identity (``identity_link``), log it and e-mail the cardholder. Raises
    ``ApplicationError`` if another cardholder holds it (call ``identity_claim_refusal`` first
    to tell them)."""
    from accounts.services.people import identity_link

    created = not SocialIdentity.objects.filter(
        platform=platform, platform_user_id=platform_user_id
    ).exists()
    identity = identity_link(
        cardholder=cardholder,
        platform=platform,
        platform_user_id=platform_user_id,
        handle=handle,
        now=now,
    )
    if created:
        hours = settings.HASHCART["COOLING_OFF_HOURS"]
        account_event(
            cardholder=cardholder,
            kind=AccountEventKind.IDENTITY_LINKED,
            summary=f"Linked @{handle} ({identity.get_platform_display()})",
            now=now,
            actor=actor,
        )
        account_email(
            cardholder=cardholder,
            subject=f"@{handle} is now linked",
            body=(
                f"@{handle} on {identity.get_platform_display()} is now linked to your Hashcart "
                f"account. Purchase posts from it are accepted after {hours} hours.\n\n"
                "Not you? Unlink it on your settings page and change your password.\n"
            ),
        )
    return identity


@dataclass(frozen=True)
class LinkClaim:
    """A post carrying ``#Link<CODE>``: who posted it, where and when."""

    key: int  # the caller's id for the post, echoed in the result
    code: str
    platform: str
    author_id: str
    author_handle: str
    posted_at: datetime


def link_code_of(hashtag_keys: list[str]) -> str | None:
    """The code in a post's ``#Link<CODE>`` hashtag (matching keys, lower-cased), if any."""
    for key in hashtag_keys:
        if (code := LINK_CODE.after(key, LINK_PREFIX)) is not None:
            return code
    return None


def link_claims_apply(*, claims: list[LinkClaim], now: datetime) -> dict[int, str]:
    """Apply link claims in the caller's transaction; returns ``linked``, ``link_refused`` or
    ``link_unknown`` per claim key.

    A claim counts when its code exists for that platform, was posted before the code expired,
    and the code was not used before. The code is used up either way once it matched.
    """
    results: dict[int, str] = {}
    with transaction.atomic():
        codes = {
            c.code: c
            for c in LinkCode.objects.select_for_update()
            .filter(code__in={claim.code for claim in claims})
            .select_related("cardholder__user")
        }
        for claim in claims:
            code = codes.get(claim.code)
            if (
                code is None
                or code.platform != claim.platform
                or code.claimed_at is not None
                or code.refused_reason
                or claim.posted_at > code.expires_at
            ):
                results[claim.key] = "link_unknown"
                continue
            refusal = identity_claim_refusal(
                cardholder=code.cardholder,
                platform=claim.platform,
                platform_user_id=claim.author_id,
                now=now,
            )
            if refusal:
                code.refused_reason = refusal
                code.save(update_fields=["refused_reason"])
                results[claim.key] = "link_refused"
                continue
            code.identity = identity_link_and_tell(
                cardholder=code.cardholder,
                platform=claim.platform,
                platform_user_id=claim.author_id,
                handle=claim.author_handle,
                now=now,
                actor="pipeline",
            )
            code.claimed_at = now
            code.save(update_fields=["identity", "claimed_at"])
            results[claim.key] = "linked"
    return results
