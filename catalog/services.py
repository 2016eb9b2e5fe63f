"""Writes to the catalogue: campaigns are checked and saved here, whatever the entry point."""

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, transaction

from catalog.models import Campaign
from catalog.selectors import campaign_find_clashing
from social.hashtags import hashtag_key, is_valid_hashtag

# A confirmation hashtag is the prefix followed by a code like this one (DESIGN §3.3).
HASHTAG_KEY_MAX_LENGTH = Campaign._meta.get_field("hashtag_key").max_length or 0
_SAMPLE_CODE = "K7Q2M"


@dataclass(frozen=True, slots=True)
class CampaignTerms:
    """What decides whether a campaign may hold its hashtag: checked by ``campaign_validate``."""

    platform: str
    hashtag: str
    confirm_prefix: str
    starts_at: datetime
    ends_at: datetime


def campaign_clean_hashtag(value: str) -> str:
    """The hashtag as it will be displayed: surrounding space and one leading ``#`` removed."""
    value = value.strip()
    return value[1:] if value[:1] in ("#", "\uff03") else value


def campaign_validate(
    *, terms: CampaignTerms, now: datetime, campaign_id: int | None = None
) -> None:
    """Raise ``ValidationError`` (keyed by field) unless ``terms`` may be saved.

    Checks: the hashtag and the confirmation hashtag are valid by twitter-text's rules, the
    hashtag is not all digits and its matching key fits its column; the campaign ends after it
    starts and, when new, in the future; no other campaign on the platform holds the hashtag's
    key at an overlapping time. The clash message names no other merchant's campaign.
    """
    errors: dict[str, list[str]] = {}
    tag = terms.hashtag
    if tag.isdigit():
        errors.setdefault("hashtag", []).append("A hashtag cannot be all digits.")
    elif not is_valid_hashtag(tag):
        errors.setdefault("hashtag", []).append(
            "Not a valid hashtag: use letters, digits and underscores, with at least one letter, "
            "and no spaces or punctuation."
        )
    elif len(hashtag_key(tag)) > HASHTAG_KEY_MAX_LENGTH:
        # Some letters expand under NFKC (the ligature U+FDFA into 18 characters): the stored
        # matching key must hold, or saving would fail in the database.
        errors.setdefault("hashtag", []).append(
            "This hashtag is too long once normalised for matching: use fewer or simpler letters."
        )
    if not is_valid_hashtag(terms.confirm_prefix + _SAMPLE_CODE):
        errors.setdefault("confirm_prefix", []).append(
            f"#{terms.confirm_prefix}{_SAMPLE_CODE} would not be a valid hashtag."
        )
    if terms.ends_at <= terms.starts_at:
        errors.setdefault("ends_at", []).append("The campaign must end after it starts.")
    elif campaign_id is None and terms.ends_at <= now:
        errors.setdefault("ends_at", []).append("A new campaign must end in the future.")
    if "hashtag" not in errors and "ends_at" not in errors:
        clash = campaign_find_clashing(
            platform=terms.platform,
            hashtag_key=hashtag_key(tag),
            starts_at=terms.starts_at,
            ends_at=terms.ends_at,
            exclude_id=campaign_id,
        )
        if clash.exists():
            errors.setdefault("hashtag", []).append(
                f"#{tag} is already taken on this platform by another campaign at overlapping "
                "dates. Choose another hashtag or other dates."
            )
    if errors:
        raise ValidationError(errors)


def campaign_save(*, campaign: Campaign, now: datetime) -> Campaign:
    """Validate and save a new or changed ``campaign``; its merchant is its product's merchant.

    Raises ``ValidationError`` as ``campaign_validate`` does, also when a concurrent writer took
    the hashtag between the check and the write (the database constraint decides that race).
    """
    campaign.hashtag = campaign_clean_hashtag(campaign.hashtag)
    campaign.hashtag_key = hashtag_key(campaign.hashtag)
    campaign.merchant_id = campaign.product.merchant_id
    terms = CampaignTerms(
        platform=campaign.platform,
        hashtag=campaign.hashtag,
        confirm_prefix=campaign.confirm_prefix,
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
    )
    campaign_validate(terms=terms, now=now, campaign_id=campaign.pk)
    if campaign.pk is not None:
        # Stock may shrink only down to what orders already hold.
        reserved = Campaign.objects.filter(pk=campaign.pk).values_list("stock_reserved", flat=True)
        if campaign.stock_total < reserved.get():
            raise ValidationError({"stock_total": "Orders already hold more units than this."})
    try:
        with transaction.atomic():
            if campaign.pk is None:
                campaign.save()
            else:
                # stock_reserved moves only by conditional updates elsewhere: never write it here.
                campaign.save(
                    update_fields=[
                        f.attname
                        for f in Campaign._meta.concrete_fields
                        if not f.primary_key and f.attname not in ("stock_reserved", "created_at")
                    ]
                )
    except (IntegrityError, OperationalError) as exc:
        # Writers inserting the same hashtag at once can deadlock on the exclusion constraint's
        # check (PostgreSQL aborts one of them, SQLSTATE 40P01): that one lost the race too.
        lost_race = isinstance(exc, IntegrityError) or getattr(exc.__cause__, "sqlstate", "") in (
            "40P01",
            "40001",
        )
        if not lost_race:
            raise
        raise ValidationError(
            {
                "hashtag": f"#{campaign.hashtag} was just taken by another campaign, or the stock "
                "is below what orders hold. Reload and try again."
            }
        ) from exc
    return campaign


def campaign_set_paused(*, campaign_ids: list[int], paused: bool) -> int:
    """Pause or resume the given campaigns; returns how many changed. Purchases posted while a
    campaign is paused are decided ``campaign_closed`` (DESIGN §3.2)."""
    return Campaign.objects.filter(pk__in=campaign_ids).exclude(paused=paused).update(paused=paused)
