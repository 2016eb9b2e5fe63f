"""The hashtags and confirmation prefixes a CSV import's campaigns are weighed against
(``catalog.imports``): everyone's campaigns that ``campaign_validate`` would read, loaded once
and indexed, so that checking a row's campaign costs no query."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Q

from accounts.services.linking import LINK_PREFIX
from catalog.import_catalogue import CampaignPlan, Undo
from catalog.models import (
    Campaign,
    CampaignListing,
)
from catalog.selectors import PREFIX_GRACE
from catalog.services import (
    _THROTTLED as THROTTLED,
)
from catalog.services import (
    Actor,
    CampaignTerms,
    campaign_terms_errors,
)
from catalog.services import (
    _audit as refusal_audit,
)
from catalog.services import (
    _confirmation_looks_like as confirmation_looks_like,
)
from catalog.services import (
    _count_refusal as refusal_count,
)
from catalog.services import (
    _prefix_unavailable as prefix_unavailable,
)
from catalog.services import (
    _throttled as refusals_throttled,
)
from catalog.services import (
    _unavailable as unavailable,
)
from core.codes import CONFIRMATION_CODE, LINK_CODE
from social.hashtags import hashtag_key


@dataclass(frozen=True)
class HashtagHolder:
    """A campaign as ``campaign_validate`` weighs it (``ident``: its id, or a new one's)."""

    ident: int
    merchant_id: int | None
    networks: frozenset[str]
    key: str
    starts_at: datetime
    ends_at: datetime
    prefix_key: str


class HashtagsInUse:
    """Every campaign, anyone's, whose hashtag or confirmation prefix ``campaign_validate``
    would weigh for the file's campaigns, read in two queries (``load``), with the file's
    campaigns put in as their rows are accepted (``put``), indexed so that checking a
    campaign (``validate``) costs no query."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.holders: dict[int, HashtagHolder] = {}
        self.throttled: bool | None = None  # whether the importing login is (``_throttled``)
        # By hashtag key; by (network, confirmation prefix key) of those ending after
        # now - PREFIX_GRACE; by (network, a key less a code's length) of those ending after now.
        self.by_key: dict[str, set[int]] = {}
        self.by_prefix: dict[tuple[str, str], set[int]] = {}
        self.by_stem: dict[tuple[str, str], set[int]] = {}

    def load(self, keys: set[str]) -> None:
        """Campaigns holding one of ``keys`` (whatever their dates), or ending after now less
        ``PREFIX_GRACE`` (whatever their hashtag)."""
        held = Q(ends_at__gt=self.now - PREFIX_GRACE) | Q(hashtag_key__in=keys)
        listed: dict[int, set[str]] = {}
        listings = CampaignListing.objects.filter(
            Q(campaign__ends_at__gt=self.now - PREFIX_GRACE) | Q(campaign__hashtag_key__in=keys)
        )
        for pk, platform in listings.values_list("campaign_id", "platform"):
            listed.setdefault(pk, set()).add(platform)
        fields = ("pk", "merchant_id", "platform", "hashtag_key", "starts_at", "ends_at")
        for row in Campaign.objects.filter(held).values_list(*fields, "confirm_prefix"):
            pk, merchant_id, platform, key, starts_at, ends_at, prefix = row
            if pk not in self.holders:
                networks = frozenset({platform} | listed.get(pk, set()))
                self._add(
                    HashtagHolder(
                        pk, merchant_id, networks, key, starts_at, ends_at, hashtag_key(prefix)
                    )
                )

    def _indexes(self, holder: HashtagHolder) -> Iterator[set[int]]:
        yield self.by_key.setdefault(holder.key, set())
        for network in holder.networks:
            if holder.ends_at > self.now - PREFIX_GRACE:
                yield self.by_prefix.setdefault((network, holder.prefix_key), set())
            if holder.ends_at > self.now and len(holder.key) >= CODE_LENGTH:
                yield self.by_stem.setdefault((network, hashtag_stem(holder.key)), set())

    def _add(self, holder: HashtagHolder) -> None:
        self.holders[holder.ident] = holder
        for index in self._indexes(holder):
            index.add(holder.ident)

    def _remove(self, ident: int) -> None:
        holder = self.holders.pop(ident, None)
        if holder is not None:
            for index in self._indexes(holder):
                index.discard(ident)

    def put(self, plan: CampaignPlan, undo: Undo) -> None:
        """Hold ``plan``'s campaign as it now is (replacing what it was), until ``undo``."""
        campaign = plan.campaign
        old = self.holders.get(plan.ident)
        self._remove(plan.ident)
        self._add(
            HashtagHolder(
                plan.ident,
                campaign.merchant_id,
                frozenset(plan.networks),
                campaign.hashtag_key,
                campaign.starts_at,
                campaign.ends_at,
                hashtag_key(campaign.confirm_prefix),
            )
        )

        def back() -> None:
            self._remove(plan.ident)
            if old is not None:
                self._add(old)

        undo.steps.append(back)

    def validate(
        self, terms: CampaignTerms, ident: int, *, campaign_id: int | None, actor: Actor
    ) -> None:
        """``campaign_validate(terms=terms, now=now, campaign_id=campaign_id, actor=actor)``,
        its rules and messages, on these campaigns rather than the database's (``ident``: the
        campaign's own entry, left out as ``campaign_id`` is)."""
        errors = campaign_terms_errors(terms=terms, now=self.now, campaign_id=campaign_id)
        if not errors:
            self._availability(terms, ident, campaign_id, actor, errors)
        if errors:
            raise ValidationError(errors)

    def _availability(
        self,
        terms: CampaignTerms,
        ident: int,
        campaign_id: int | None,
        actor: Actor,
        errors: dict[str, list[str]],
    ) -> None:
        """``catalog.services._check_availability``'s rules, on the indexes."""
        tag, prefix = terms.hashtag, terms.confirm_prefix
        key, prefix_key = hashtag_key(tag), hashtag_key(prefix)
        if self.throttled is None:
            # Read once, and again after each refusal this import counts (not per campaign:
            # a cache round trip each would cost more than all the checks).
            self.throttled = refusals_throttled(actor)
        if self.throttled:
            errors.setdefault("hashtag", []).append(THROTTLED)
            refusal_audit(
                actor, terms, campaign_id, "throttled: too many refused hashtags or prefixes"
            )
            return
        networks = set(terms.networks)
        holders = [
            h
            for h in map(self.holders.__getitem__, self.by_key.get(key, ()))
            if h.ident != ident
            and h.networks & networks
            and (
                h.ends_at > self.now
                or (h.starts_at < terms.ends_at and h.ends_at > terms.starts_at)
            )
        ]
        others = sorted(h.ident for h in holders if h.merchant_id != terms.merchant_id)
        own_overlapping = sorted(
            (h.starts_at, h.ends_at)
            for h in holders
            if h.merchant_id == terms.merchant_id
            and h.starts_at < terms.ends_at
            and h.ends_at > terms.starts_at
        )
        looks_like_confirmation = len(key) >= CODE_LENGTH and (
            hashtag_stem(key) == prefix_key
            or any(
                self.by_prefix.get((network, hashtag_stem(key)), set()) - {ident}
                for network in networks
            )
        )
        reasons: list[str] = []
        if others:
            reasons.append(f"hashtag held by campaign(s) {[i for i in others if i > 0]}")
            errors.setdefault("hashtag", []).append(unavailable(tag))
        elif looks_like_confirmation:
            reasons.append("hashtag looks like a confirmation hashtag of a prefix in use")
            errors.setdefault("hashtag", []).append(unavailable(tag))
        elif own_overlapping:
            starts_at, ends_at = own_overlapping[0]
            errors.setdefault("hashtag", []).append(
                f"#{tag} is held by another of your campaigns from {starts_at:%Y-%m-%d %H:%M} to "
                f"{ends_at:%Y-%m-%d %H:%M} UTC. Choose another hashtag or other dates."
            )
        link_tag = LINK_PREFIX + "x" * LINK_CODE.length
        if any(
            self.by_stem.get((network, prefix_key), set()) - {ident} for network in networks
        ) or confirmation_looks_like(prefix_key, link_tag, exact_prefix=LINK_PREFIX):
            reasons.append("confirmation prefix looks like a hashtag in use or the link tag")
            errors.setdefault("confirm_prefix", []).append(prefix_unavailable(prefix))
        if reasons:
            refusal_count(actor)
            refusal_audit(actor, terms, campaign_id, "refused: " + "; ".join(reasons))
            self.throttled = None


CODE_LENGTH = CONFIRMATION_CODE.length


def hashtag_stem(key: str) -> str:
    """``key`` less a confirmation code's length: the prefix key of the confirmation hashtags it
    could be (``_confirmation_looks_like``)."""
    return key[: len(key) - CODE_LENGTH]
