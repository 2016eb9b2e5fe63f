"""Products, their variants and their campaigns written from CSV rows, and read back as rows
(issue 14, item 6): the format is ``catalog.import_format``'s; ``catalog.resources`` adapts both
to django-import-export.

A product sold in several campaigns has one row per variant in each; every row repeats its
product's and its campaign's columns, and rows that disagree on them are refused (naming the
first row). Rows are matched to what exists by natural keys inside the importing merchant: a
product by its SKU, a variant by its product and SKU, a campaign by its hashtag and start.

A file is checked as a whole (``CatalogImport``): what its rows may touch is read in a few
queries, every row is checked in memory by the rules of the admin forms' services (the models'
field validation, ``option_validate``, ``variant_validate``, ``campaign_validate`` with its
refusals counted and logged, ``variant_stock_validate``), against the catalogue as the rows
before it leave it, then everything is written in bulk. A preview or a thousand-row file thus
costs the same few dozen queries as a ten-row one. The rules of those services are restated
here over the loaded rows (their functions query per object): a change to them belongs in both
places. The caller holds the transaction that makes a
file all or nothing; the database's constraints (one campaign per hashtag at a time, stock no
lower than orders hold) decide a race with another writer, and then nothing is imported.
"""

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery, Sum

from accounts.services.linking import LINK_PREFIX
from catalog.import_format import (
    COLUMNS,
    CatalogRow,
    cell_guard,
    options_format,
    time_format,
)
from catalog.models import (
    MAX_OPTIONS,
    Campaign,
    CampaignListing,
    CampaignVariantStock,
    Merchant,
    Product,
    ProductOption,
    ProductVariant,
    default_platform,
)
from catalog.selectors import PREFIX_GRACE, campaign_networks_prefetched, networks_in_order
from catalog.services import (
    _THROTTLED as THROTTLED,
)
from catalog.services import (
    CampaignTerms,
    campaign_clean_hashtag,
    campaign_terms_errors,
    campaigns_lock,
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
    _listings_write as listings_write,
)
from catalog.services import (
    _prefix_unavailable as prefix_unavailable,
)
from catalog.services import (
    _stock_added as stock_added,
)
from catalog.services import (
    _throttled as refusals_throttled,
)
from catalog.services import (
    _unavailable as unavailable,
)
from catalog.variant_services import _ONE_WORD as ONE_WORD
from core.codes import CONFIRMATION_CODE, LINK_CODE
from social.hashtags import hashtag_key
from social.models import Platform

Actor = AbstractBaseUser | AnonymousUser | None


# Where a model's or service's error (keyed by model field) shows: the file's column, by the
# model it was raised for (a product's ``sku`` is not a variant's).
_PRODUCT_COLUMNS = {"sku": "product_sku", "name": "product_name"}
_OPTION_COLUMNS = {"name": "options", "position": "options"}
_VARIANT_COLUMNS = {
    "sku": "variant_sku",
    "option1": "options",
    "option2": "options",
    "option3": "options",
}
_CAMPAIGN_COLUMNS = {"platform": "networks", "platforms": "networks", "stock_total": "stock"}
_STOCK_COLUMNS = {"stock_total": "stock", "variant": "variant_sku"}


@contextmanager
def _columns(names: dict[str, str]) -> Iterator[None]:
    """Re-key the ``ValidationError`` raised inside by column (``names``, else the field's own
    name when it is a column, else the row as a whole)."""
    try:
        yield
    except ValidationError as exc:
        if not hasattr(exc, "error_dict"):
            raise ValidationError({NON_FIELD_ERRORS: exc.messages}) from exc
        errors: dict[str, list[str]] = {}
        for name, messages in exc.message_dict.items():
            column = names.get(name, name if name in COLUMNS else NON_FIELD_ERRORS)
            errors.setdefault(column, []).extend(messages)
        raise ValidationError(errors) from exc


@dataclass
class ImportLedger:
    """What the rows imported so far said of each product, variant, campaign and stock (by
    natural key), with the row that first said it: later rows must agree. Filled only by rows
    that were written, so a refused row leaves nothing to compare with."""

    seen: dict[tuple[Any, ...], tuple[int, Any]] = field(default_factory=dict)

    def check(
        self, key: tuple[Any, ...], stated: Any, *, column: str, what: str
    ) -> tuple[tuple[Any, ...], Any] | None:
        """Raise ``ValidationError`` on ``column`` if an earlier row said otherwise of ``key``;
        return the entry to record once this row is written (``None`` if one is there)."""
        first = self.seen.get(key)
        if first is not None and first[1] != stated:
            raise ValidationError(
                {column: f"Row {first[0]} gave {what} other values: every row must agree."}
            )
        return (key, stated) if first is None else None


@dataclass(frozen=True)
class RowOutcome:
    """``kind``: ``new`` (something was created), ``update`` (something changed) or ``skip``
    (nothing to do). ``before``: the row as the database held it (blank cells for what did
    not exist), for the preview's differences; ``product``: the row's product."""

    kind: str
    before: dict[str, str]
    product: Product


@dataclass
class _Changes:
    created: bool = False
    changed: bool = False
    stated: list[tuple[tuple[Any, ...], Any]] = field(default_factory=list)


class CatalogImport:
    """A file's rows checked against the catalogue read up front, then written in bulk.

    ``row`` checks one row (``CatalogRow``) of a merchant against the catalogue as the rows
    before it leave it: the same rules as the admin forms' services (the models' field
    validation, ``option_validate``, ``variant_validate``, ``campaign_validate``,
    ``variant_stock_validate``), run on what ``load`` read in a few queries rather than row
    by row. A refused row changes nothing; ``write`` then saves what the accepted rows say, in
    the caller's transaction (call it only when every row was accepted). Campaign refusals are
    counted and logged for ``actor`` as ``campaign_save`` does.

    Queries: a few per merchant and a few for the hashtags in use (``load``), whatever the
    number of rows; ``write`` adds a few per kind of object, and a few per existing campaign
    whose networks or dates change (its listings)."""

    def __init__(self, *, now: datetime, actor: Actor) -> None:
        self.now = now
        self.actor = actor
        self.ledger = ImportLedger()
        self._states: dict[int, _Catalogue] = {}
        self._hashtags = _HashtagsInUse(now)

    def load(self, rows: Iterable[tuple[CatalogRow, Merchant]]) -> None:
        """Read what ``rows`` may touch: their merchants' products, options, variants,
        campaigns and stocks by SKU and hashtag, and every hashtag and prefix in use."""
        by_merchant: dict[int, tuple[Merchant, list[CatalogRow]]] = {}
        for row, merchant in rows:
            by_merchant.setdefault(merchant.pk, (merchant, []))[1].append(row)
        keys: set[str] = set()
        for merchant, its_rows in by_merchant.values():
            if merchant.pk not in self._states:
                self._states[merchant.pk] = _Catalogue.load(merchant, its_rows)
            keys |= {hashtag_key(r.hashtag) for r in its_rows if r.hashtag}
        self._hashtags.load(keys)

    def row(self, row: CatalogRow, *, number: int, merchant: Merchant) -> RowOutcome:
        """Check ``row`` (the file's row ``number``, one of those given to ``load``) and note
        what it writes. Raises ``ValidationError`` keyed by column (``COLUMNS``); the row then
        leaves nothing."""
        if merchant.pk not in self._states:
            # Its catalogue was not read: its products would all look new.
            raise ValueError(f"Load the rows of {merchant.slug} before checking them.")
        undo = _Undo()
        try:
            with _columns({}):
                return self._row(row, number, self._states[merchant.pk], undo)
        except ValidationError:
            undo.rollback()
            raise

    def _row(self, row: CatalogRow, number: int, state: "_Catalogue", undo: "_Undo") -> RowOutcome:
        changes = _Changes()
        before = _blank_row(state.merchant)
        product = state.products.get(row.product_sku)
        if product is not None:
            before |= _product_cells(product)
        product = self._product(row, state, product, changes, undo)
        variant = None
        if row.variant_sku:
            variant = self._variant(row, state, product, changes, before, undo)
        if row.hashtag:
            self._campaign(row, state, variant, changes, before, undo)
        for key, stated in changes.stated:
            self.ledger.seen.setdefault(key, (number, stated))
        kind = "new" if changes.created else "update" if changes.changed else "skip"
        return RowOutcome(kind=kind, before=before, product=product)

    def _product(
        self,
        row: CatalogRow,
        state: "_Catalogue",
        product: Product | None,
        changes: _Changes,
        undo: "_Undo",
    ) -> Product:
        stated = (row.product_name, row.description)
        key = ("product", state.merchant.pk, row.product_sku)
        first = self.ledger.check(key, stated, column="product_name", what="this product")
        if first is not None:
            changes.stated.append(first)
        new = product is None
        if product is None:
            product = Product(merchant=state.merchant, sku=row.product_sku)
            changes.created = True
        wanted = {"name": row.product_name}
        if row.description is not None:
            wanted["description"] = row.description
        if new or any(getattr(product, k) != v for k, v in wanted.items()):
            undo.setattrs(product, wanted)
            with _columns(_PRODUCT_COLUMNS):
                # One SKU per merchant: new ones are new to ``state.products`` by construction.
                product.full_clean(
                    exclude=["merchant"], validate_unique=False, validate_constraints=False
                )
            undo.put(state.products, row.product_sku, product)
            undo.put(state.dirty, id(product), product)
            changes.changed = True
        return product

    def _variant(
        self,
        row: CatalogRow,
        state: "_Catalogue",
        product: Product,
        changes: _Changes,
        before: dict[str, str],
        undo: "_Undo",
    ) -> ProductVariant:
        names = [name for name, _ in row.options]
        values = [value for _, value in row.options]
        options = state.options.get(row.product_sku, [])
        if not options:
            for position, name in enumerate(names, start=1):
                option = ProductOption(position=position, name=name)
                with _columns(_OPTION_COLUMNS):
                    option.full_clean(
                        exclude=["product"], validate_unique=False, validate_constraints=False
                    )
                    state.option_validate(row.product_sku, option, options)
                options = [*options, option]
                undo.put(state.dirty, id(option), option)
            undo.put(state.options, row.product_sku, options)
            changes.changed = True
        have = [o.name for o in options]
        if [hashtag_key(n) for n in names] != [hashtag_key(n) for n in have]:
            unknown = [n for n in names if hashtag_key(n) not in {hashtag_key(h) for h in have}]
            lead = f"Unknown option {', '.join(unknown)}: " if unknown else ""
            raise ValidationError(
                {"options": f"{lead}this product's options are {', '.join(have)}, in that order."}
            )
        padded = [*values, "", "", ""][:MAX_OPTIONS]
        key = ("variant", state.merchant.pk, row.product_sku, row.variant_sku)
        first = self.ledger.check(key, tuple(padded), column="options", what="this variant")
        if first is not None:
            changes.stated.append(first)
        siblings = state.variants.setdefault(row.product_sku, {})
        variant = siblings.get(row.variant_sku)
        new = variant is None
        if variant is not None:
            before["variant_sku"] = variant.sku
            before["options"] = options_format(zip(have, variant.values, strict=False))
        else:
            variant = ProductVariant(sku=row.variant_sku)
            changes.created = True
        if new or list(variant.values_padded()) != padded:
            undo.setattrs(
                variant, dict(zip(("option1", "option2", "option3"), padded, strict=True))
            )
            with _columns(_VARIANT_COLUMNS):
                variant.full_clean(
                    exclude=["product"], validate_unique=False, validate_constraints=False
                )
                # As variant_save: values stripped, then variant_validate's rules.
                undo.setattrs(
                    variant, {f"option{n}": v.strip() for n, v in enumerate(padded, start=1)}
                )
                state.variant_validate(row.product_sku, variant, options)
            undo.put(siblings, row.variant_sku, variant)
            undo.put(state.variant_skus, row.variant_sku, row.product_sku)
            undo.put(state.dirty, id(variant), variant)
            changes.changed = True
        return variant

    def _campaign(
        self,
        row: CatalogRow,
        state: "_Catalogue",
        variant: ProductVariant | None,
        changes: _Changes,
        before: dict[str, str],
        undo: "_Undo",
    ) -> None:
        if row.starts_at is None or row.ends_at is None or row.stock is None:
            # catalog_row_parse refuses these already: a row built otherwise is refused here.
            raise ValidationError({"hashtag": "A campaign row needs starts_at, ends_at and stock."})
        merchant = state.merchant
        zone = ZoneInfo(merchant.time_zone)
        key = hashtag_key(row.hashtag)
        campaign_key = ("campaign", merchant.pk, key, row.starts_at)
        terms = (
            row.product_sku,
            row.networks,
            row.ends_at,
            row.price,
            row.currency,
            row.price_includes_tax,
            row.per_buyer_limit,
            row.confirm_prefix,
        )
        first = self.ledger.check(campaign_key, terms, column="hashtag", what="this campaign")
        if first is not None:
            changes.stated.append(first)
        stock_key = (*campaign_key, row.variant_sku)
        if stock_key in self.ledger.seen:
            raise ValidationError(
                {"stock": f"Row {self.ledger.seen[stock_key][0]} already gives this stock."}
            )
        changes.stated.append((stock_key, row.stock))
        plan = state.campaigns.get((key, row.starts_at))
        networks: tuple[str, ...] = ()
        new = plan is None
        if plan is None:
            campaign = Campaign(
                merchant=merchant,
                platform=default_platform(),
                hashtag=row.hashtag,
                starts_at=row.starts_at,
                stock_total=0,
            )
            plan = _CampaignPlan(campaign=campaign, product_sku=row.product_sku)
            changes.created = True
        else:
            campaign = plan.campaign
            if plan.product_sku != row.product_sku:
                raise ValidationError(
                    {"hashtag": f"#{campaign.hashtag} from this start sells {plan.product_sku}."}
                )
            networks = plan.networks
            before |= _campaign_cells(campaign, networks, zone)
        if variant is None and state.options.get(row.product_sku) and (new or plan.stocks):
            # Its stock is its variants' (only a campaign that has none yet keeps a stock of its
            # own, as its page allows).
            raise ValidationError(
                {"variant_sku": "This product has options: each campaign row names its variant."}
            )
        wanted: dict[str, Any] = {"ends_at": row.ends_at}
        optional = ("price", "currency", "price_includes_tax", "per_buyer_limit", "confirm_prefix")
        wanted |= {name: getattr(row, name) for name in optional if getattr(row, name) is not None}
        if variant is None:
            wanted["stock_total"] = row.stock
        wanted_networks = row.networks or networks or (campaign.platform,)
        if (
            new
            or any(getattr(campaign, k) != v for k, v in wanted.items())
            or networks_in_order(wanted_networks[0], wanted_networks) != networks
        ):
            undo.setattrs(campaign, wanted | {"hashtag_key": key})
            exclude = ["product", "merchant", "stock_reserved", "hashtag_key"]
            with _columns(_CAMPAIGN_COLUMNS):
                campaign.full_clean(
                    exclude=exclude, validate_unique=False, validate_constraints=False
                )
                self._campaign_check(plan, wanted_networks, undo)
            undo.put(state.campaigns, (key, row.starts_at), plan)
            undo.put(state.dirty_campaigns, id(plan), plan)
            changes.changed = True
        if variant is not None:
            self._stock(plan, variant, row.stock, changes, before, undo)

    def _campaign_check(
        self, plan: "_CampaignPlan", platforms: tuple[str, ...], undo: "_Undo"
    ) -> None:
        """``campaign_save``'s checks of ``plan``'s campaign, run on the hashtags in use."""
        campaign = plan.campaign
        networks = tuple(dict.fromkeys(platforms))
        if not networks:
            raise ValidationError({"platforms": "Choose at least one network."})
        unknown = [p for p in networks if p not in Platform.values]
        if unknown:
            raise ValidationError({"platforms": f"Unknown network: {', '.join(unknown)}."})
        undo.setattrs(
            campaign,
            {
                "platform": networks[0],
                "hashtag": campaign_clean_hashtag(campaign.hashtag),
            },
        )
        undo.setattrs(campaign, {"hashtag_key": hashtag_key(campaign.hashtag)})
        terms = CampaignTerms(
            platform=campaign.platform,
            hashtag=campaign.hashtag,
            confirm_prefix=campaign.confirm_prefix,
            starts_at=campaign.starts_at,
            ends_at=campaign.ends_at,
            merchant_id=campaign.merchant_id,
            other_platforms=networks[1:],
        )
        self._hashtags.validate(terms, plan.ident, campaign_id=campaign.pk, actor=self.actor)
        if plan.stocks:
            undo.setattrs(campaign, {"stock_total": plan.stock_sum()})
        if campaign.pk is not None and campaign.stock_total < campaign.stock_reserved:
            raise ValidationError({"stock_total": "Orders already hold more units than this."})
        undo.setattrs(plan, {"networks": networks_in_order(networks[0], networks)})
        self._hashtags.put(plan, undo)

    def _stock(
        self,
        plan: "_CampaignPlan",
        variant: ProductVariant,
        units: int,
        changes: _Changes,
        before: dict[str, str],
        undo: "_Undo",
    ) -> None:
        stock = plan.stocks.get(variant.sku)
        if stock is None:
            stock = CampaignVariantStock(stock_total=units)
            changes.created = True
        else:
            before["stock"] = str(stock.stock_total)
            if stock.stock_total == units:
                return
            undo.setattrs(stock, {"stock_total": units})
        with _columns(_STOCK_COLUMNS):
            stock.full_clean(
                exclude=["campaign", "variant"], validate_unique=False, validate_constraints=False
            )
            # variant_stock_validate's rules (the variant is the campaign's product's, by the
            # row): a total no lower than what orders hold.
            if stock.pk is not None and stock.stock_total < stock.stock_reserved:
                raise ValidationError({"stock_total": "Orders already hold more units than this."})
        undo.put(plan.stocks, variant.sku, stock)
        undo.put(plan.dirty_stocks, variant.sku, stock)
        # variant_stock_save's sync: the campaign holds the sum of its variants' stocks.
        undo.setattrs(plan.campaign, {"stock_total": plan.stock_sum()})
        if plan.campaign.pk is not None:
            undo.put(self._states[plan.campaign.merchant_id].dirty_campaigns, id(plan), plan)
        changes.changed = True

    def write(self) -> None:
        """Save what the accepted rows said, in the caller's transaction; the waitlists of the
        campaigns whose stock rose are told after the commit, as ``campaign_save`` does.

        Raises ``ValidationError`` (the file's, not a row's) if orders took units or another
        writer took a hashtag meanwhile: the caller's transaction then undoes it all."""
        raised: list[int] = []
        try:
            with transaction.atomic():
                for state in self._states.values():
                    raised += state.write(self.now)
        except (IntegrityError, OperationalError) as exc:
            # The database's constraints decide a race the checks could not see (writers
            # inserting one hashtag at once may deadlock on its check: one loses, as there).
            deadlock = getattr(exc.__cause__, "sqlstate", "") in ("40P01", "40001")
            if isinstance(exc, OperationalError) and not deadlock:
                raise
            raise ValidationError(
                "A hashtag was taken, or orders took units, while the file was imported: "
                "nothing was imported. Import it again to see which rows."
            ) from exc
        if raised:
            stock_added(campaign_ids=sorted(raised))


class _Undo:
    """What a row changed in the plan, to take back if the row is refused."""

    def __init__(self) -> None:
        self.steps: list[Callable[[], None]] = []

    def setattrs(self, obj: object, values: Mapping[str, Any]) -> None:
        old = {name: getattr(obj, name) for name in values}

        def back() -> None:
            for name, value in old.items():
                setattr(obj, name, value)

        self.steps.append(back)
        for name, value in values.items():
            setattr(obj, name, value)

    def put(self, mapping: dict[Any, Any], key: Any, value: Any) -> None:
        had, old = key in mapping, mapping.get(key)
        mapping[key] = value

        def back() -> None:
            if had:
                mapping[key] = old
            else:
                mapping.pop(key, None)

        self.steps.append(back)

    def rollback(self) -> None:
        for step in reversed(self.steps):
            step()
        self.steps.clear()


# Stand-ins for the ids of the file's new campaigns (negative: never a stored campaign's).
_NEW_IDS = itertools.count(1)


@dataclass(eq=False)
class _CampaignPlan:
    """A campaign of the file (new, or as stored) with its networks and variant stocks."""

    campaign: Campaign
    product_sku: str
    networks: tuple[str, ...] = ()
    stocks: dict[str, CampaignVariantStock] = field(default_factory=dict)  # by variant SKU
    dirty_stocks: dict[str, CampaignVariantStock] = field(default_factory=dict)
    stock_before: int | None = None
    ident: int = field(default_factory=lambda: -next(_NEW_IDS))

    listed_as: set[tuple[Any, ...]] = field(default_factory=set)  # its stored listings

    def __post_init__(self) -> None:
        if self.campaign.pk is not None:
            self.ident = self.campaign.pk
            self.stock_before = self.campaign.stock_total

    def listing_terms(self) -> set[tuple[Any, ...]]:
        """The listings the campaign needs: one per network, with its key and dates."""
        c = self.campaign
        return {(n, c.hashtag_key, c.starts_at, c.ends_at) for n in self.networks}

    def stock_sum(self) -> int:
        return sum(s.stock_total for s in self.stocks.values())


@dataclass(eq=False)
class _Catalogue:
    """One merchant's products, options, variants and campaigns the file may touch, as the
    accepted rows leave them; ``dirty`` and ``dirty_campaigns``: what ``write`` saves."""

    merchant: Merchant
    products: dict[str, Product]  # by SKU: those of the file's SKUs (products' and variants')
    options: dict[str, list[ProductOption]]  # by product SKU, in position order
    variants: dict[str, dict[str, ProductVariant]]  # by product SKU, then variant SKU
    variant_skus: dict[str, str]  # every variant SKU of the file's SKUs: its product's SKU
    campaigns: dict[tuple[str, datetime], _CampaignPlan]  # by hashtag key and start
    dirty: dict[int, Product | ProductOption | ProductVariant] = field(default_factory=dict)
    dirty_campaigns: dict[int, _CampaignPlan] = field(default_factory=dict)

    @classmethod
    def load(cls, merchant: Merchant, rows: list[CatalogRow]) -> "_Catalogue":
        skus = {r.product_sku for r in rows} | {r.variant_sku for r in rows if r.variant_sku}
        products = {p.sku: p for p in Product.objects.filter(merchant=merchant, sku__in=skus)}
        by_id = {p.pk: p for p in products.values()}
        options: dict[str, list[ProductOption]] = {}
        for option in ProductOption.objects.filter(product__in=list(by_id)).order_by("position"):
            options.setdefault(by_id[option.product_id].sku, []).append(option)
        variants: dict[str, dict[str, ProductVariant]] = {}
        variant_skus: dict[str, str] = {}
        # The file's products' variants, and any of the merchant's holding one of the file's SKUs.
        found = ProductVariant.objects.filter(
            Q(product__in=list(by_id)) | Q(product__merchant=merchant, sku__in=skus)
        ).select_related("product")
        for variant in found:
            owner = variant.product.sku
            if owner in products:
                variant.product = products[owner]
                variants.setdefault(owner, {})[variant.sku] = variant
            variant_skus[variant.sku] = owner
        keys = {hashtag_key(r.hashtag) for r in rows if r.hashtag}
        campaigns: dict[tuple[str, datetime], _CampaignPlan] = {}
        stored = (
            Campaign.objects.filter(merchant=merchant, hashtag_key__in=keys)
            .select_related("product")
            .prefetch_related("listings", "variant_stocks__variant")
        )
        for campaign in stored:
            plan = _CampaignPlan(
                campaign=campaign,
                product_sku=campaign.product.sku,
                networks=campaign_networks_prefetched(campaign),
                stocks={s.variant.sku: s for s in campaign.variant_stocks.all()},
                listed_as={
                    (li.platform, li.hashtag_key, li.starts_at, li.ends_at)
                    for li in campaign.listings.all()
                },
            )
            campaigns[(campaign.hashtag_key, campaign.starts_at)] = plan
        return cls(merchant, products, options, variants, variant_skus, campaigns)

    def option_validate(
        self, product_sku: str, option: ProductOption, others: list[ProductOption]
    ) -> None:
        """``option_validate``'s rules for a new option of the product."""
        errors: dict[str, str] = {}
        if not 1 <= (option.position or 0) <= MAX_OPTIONS:
            errors["position"] = f"A product has at most {MAX_OPTIONS} options: position 1 to 3."
        if any(hashtag_key(o.name) == hashtag_key(option.name) for o in others):
            errors["name"] = "This product already has an option of that name."
        if self.variants.get(product_sku):
            errors["name"] = "Remove the product's variants before giving it another option."
        if errors:
            raise ValidationError(errors)

    def variant_validate(
        self, product_sku: str, variant: ProductVariant, options: list[ProductOption]
    ) -> None:
        """``variant_validate``'s rules, on the catalogue as the rows before leave it."""
        errors: dict[str, str] = {}
        count = len(options)
        if count == 0:
            errors["option1"] = "Give the product an option (Size, Colour…) before its variants."
        for position, value in enumerate(variant.values_padded(), start=1):
            name = f"option{position}"
            if position <= count and not value:
                errors[name] = "Give a value for each of the product's options."
            elif position > count and value:
                errors[name] = "The product has no option at this position."
            elif value and not ONE_WORD.match(value):
                errors[name] = "A value is one word: letters, digits and underscores."
        keys = tuple(hashtag_key(v) for v in variant.values_padded())
        if any(
            other is not variant and tuple(hashtag_key(v) for v in other.values_padded()) == keys
            for other in self.variants.get(product_sku, {}).values()
        ):
            errors.setdefault("option1", "The product already has a variant with these values.")
        holder = self.variant_skus.get(variant.sku)
        if (holder is not None and holder != product_sku) or variant.sku in self.products:
            errors["sku"] = "Another product or variant of this merchant has this SKU."
        if errors:
            raise ValidationError(errors)

    def write(self, now: datetime) -> list[int]:
        """Save the new and changed rows; returns the existing campaigns whose stock rose."""
        by_kind: dict[type, list[Any]] = {}
        for obj in self.dirty.values():
            by_kind.setdefault(type(obj), []).append(obj)
        products = by_kind.get(Product, [])
        stored = [p for p in products if p.pk is not None]  # before the new ones get ids
        Product.objects.bulk_create([p for p in products if p.pk is None])
        _bulk_update(Product, stored, now)
        for sku, options in self.options.items():
            for option in options:
                option.product = self.products[sku]
        ProductOption.objects.bulk_create(by_kind.get(ProductOption, []))
        variants = by_kind.get(ProductVariant, [])
        for sku, siblings in self.variants.items():
            for variant in siblings.values():
                variant.product = self.products[sku]
        stored = [v for v in variants if v.pk is not None]
        ProductVariant.objects.bulk_create([v for v in variants if v.pk is None])
        _bulk_update(ProductVariant, stored, now)
        plans = list(self.dirty_campaigns.values())
        locked = campaigns_lock(p.campaign.pk for p in plans if p.campaign.pk is not None)
        for plan in plans:
            campaign = plan.campaign
            campaign.product = self.products[plan.product_sku]
            campaign.merchant = self.merchant
            held = locked[campaign.pk].stock_reserved if campaign.pk is not None else 0
            if campaign.stock_total < held:  # orders took units since the rows were checked
                raise IntegrityError(f"campaign {campaign.pk}: fewer units than orders hold")
        new = [p for p in plans if p.campaign.pk is None]
        changed = [p for p in plans if p.campaign.pk is not None]
        Campaign.objects.bulk_create([p.campaign for p in new])
        CampaignListing.objects.bulk_create(
            CampaignListing(
                campaign=p.campaign,
                platform=platform,
                hashtag_key=p.campaign.hashtag_key,
                starts_at=p.campaign.starts_at,
                ends_at=p.campaign.ends_at,
            )
            for p in new
            for platform in p.networks
        )
        _bulk_update(
            Campaign, [p.campaign for p in changed], now, exclude=("stock_reserved", "created_at")
        )
        for plan in changed:
            if plan.listing_terms() != plan.listed_as:
                listings_write(plan.campaign, plan.networks)
        stocks = [s for p in plans for s in p.dirty_stocks.values()]
        for plan in plans:
            for sku, stock in plan.dirty_stocks.items():
                stock.campaign = plan.campaign
                stock.variant = self.variants[plan.product_sku][sku]
        held_now = (
            dict(
                CampaignVariantStock.objects.filter(
                    pk__in=[s.pk for s in stocks if s.pk is not None]
                ).values_list("pk", "stock_reserved")
            )
            if any(s.pk is not None for s in stocks)
            else {}
        )
        if any(s.stock_total < held_now.get(s.pk, 0) for s in stocks):
            raise IntegrityError("a variant stock below what orders hold")
        stored_stocks = [s for s in stocks if s.pk is not None]
        CampaignVariantStock.objects.bulk_create([s for s in stocks if s.pk is None])
        CampaignVariantStock.objects.bulk_update(stored_stocks, ["stock_total"])
        # campaign_stock_sync's rule, in one statement: a campaign selling variants holds the
        # sum of their stocks as stored now (under the lock), whatever the file said of it.
        summed = CampaignVariantStock.objects.filter(campaign=OuterRef("pk")).values("campaign")
        Campaign.objects.filter(pk__in=[p.campaign.pk for p in plans if p.stocks]).update(
            stock_total=Subquery(summed.annotate(total=Sum("stock_total")).values("total"))
        )
        return [
            p.campaign.pk
            for p in changed
            if p.stock_before is not None and p.campaign.stock_total > p.stock_before
        ]


def _bulk_update(
    model: type[Any], objs: list[Any], now: datetime, exclude: tuple[str, ...] = ()
) -> None:
    if not objs:
        return
    for obj in objs:
        obj.updated_at = now
    names = [
        f.name
        for f in model._meta.concrete_fields
        if not f.primary_key and f.name not in ("created_at", *exclude)
    ]
    model.objects.bulk_update(objs, names)


@dataclass(frozen=True)
class _Holder:
    """A campaign as ``campaign_validate`` weighs it (``ident``: its id, or a new one's)."""

    ident: int
    merchant_id: int | None
    networks: frozenset[str]
    key: str
    starts_at: datetime
    ends_at: datetime
    prefix_key: str


class _HashtagsInUse:
    """Every campaign, anyone's, whose hashtag or confirmation prefix ``campaign_validate``
    would weigh for the file's campaigns, read in two queries (``load``), with the file's
    campaigns put in as their rows are accepted (``put``), indexed so that checking a
    campaign (``validate``) costs no query."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.holders: dict[int, _Holder] = {}
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
                    _Holder(pk, merchant_id, networks, key, starts_at, ends_at, hashtag_key(prefix))
                )

    def _indexes(self, holder: _Holder) -> Iterator[set[int]]:
        yield self.by_key.setdefault(holder.key, set())
        for network in holder.networks:
            if holder.ends_at > self.now - PREFIX_GRACE:
                yield self.by_prefix.setdefault((network, holder.prefix_key), set())
            if holder.ends_at > self.now and len(holder.key) >= _CODE_LENGTH:
                yield self.by_stem.setdefault((network, _stem(holder.key)), set())

    def _add(self, holder: _Holder) -> None:
        self.holders[holder.ident] = holder
        for index in self._indexes(holder):
            index.add(holder.ident)

    def _remove(self, ident: int) -> None:
        holder = self.holders.pop(ident, None)
        if holder is not None:
            for index in self._indexes(holder):
                index.discard(ident)

    def put(self, plan: _CampaignPlan, undo: _Undo) -> None:
        """Hold ``plan``'s campaign as it now is (replacing what it was), until ``undo``."""
        campaign = plan.campaign
        old = self.holders.get(plan.ident)
        self._remove(plan.ident)
        self._add(
            _Holder(
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
        looks_like_confirmation = len(key) >= _CODE_LENGTH and (
            _stem(key) == prefix_key
            or any(
                self.by_prefix.get((network, _stem(key)), set()) - {ident} for network in networks
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


_CODE_LENGTH = CONFIRMATION_CODE.length


def _stem(key: str) -> str:
    """``key`` less a confirmation code's length: the prefix key of the confirmation hashtags it
    could be (``_confirmation_looks_like``)."""
    return key[: len(key) - _CODE_LENGTH]


def _blank_row(merchant: Merchant) -> dict[str, str]:
    return dict.fromkeys(COLUMNS, "") | {"merchant": merchant.slug}


def _product_cells(product: Product) -> dict[str, str]:
    return {
        "product_sku": product.sku,
        "product_name": product.name,
        "description": product.description,
    }


def _campaign_cells(
    campaign: Campaign, networks: tuple[str, ...], zone: ZoneInfo
) -> dict[str, str]:
    return {
        "hashtag": campaign.hashtag,
        "networks": "; ".join(networks),
        "starts_at": time_format(campaign.starts_at, zone),
        "ends_at": time_format(campaign.ends_at, zone),
        "price": str(campaign.price),
        "currency": campaign.currency,
        "price_includes_tax": "yes" if campaign.price_includes_tax else "no",
        "per_buyer_limit": str(campaign.per_buyer_limit),
        "confirm_prefix": campaign.confirm_prefix,
        "stock": str(campaign.stock_total),
    }


def catalog_row_cells(row: CatalogRow, merchant: Merchant) -> dict[str, str]:
    """``row`` written back as cells (what the preview shows as the row's new state)."""
    zone = ZoneInfo(merchant.time_zone)
    cells = _blank_row(merchant) | {
        "product_sku": row.product_sku,
        "product_name": row.product_name,
        "description": row.description or "",
        "options": options_format(row.options),
        "variant_sku": row.variant_sku,
        "hashtag": row.hashtag,
        "networks": "; ".join(row.networks),
        "price": "" if row.price is None else str(row.price),
        "currency": row.currency or "",
        "per_buyer_limit": "" if row.per_buyer_limit is None else str(row.per_buyer_limit),
        "confirm_prefix": row.confirm_prefix or "",
        "stock": "" if row.stock is None else str(row.stock),
    }
    if row.price_includes_tax is not None:
        cells["price_includes_tax"] = "yes" if row.price_includes_tax else "no"
    for name in ("starts_at", "ends_at"):
        moment = getattr(row, name)
        cells[name] = "" if moment is None else time_format(moment, zone)
    return cells


# --- Export -----------------------------------------------------------------------------------
def catalog_rows_export(products: QuerySet[Product]) -> Iterator[dict[str, str]]:
    """The rows of ``products`` in the import's format (cells guarded against formulas), in
    product order: one per variant of each campaign (earliest campaign first), then one per
    variant in no campaign, or one for a product with neither. Importing them changes nothing.
    """
    products = products.select_related("merchant").prefetch_related(
        Prefetch("options", queryset=ProductOption.objects.order_by("position")),
        Prefetch("variants", queryset=ProductVariant.objects.order_by("id")),
        Prefetch(
            "campaigns",
            queryset=Campaign.objects.order_by("starts_at", "id").prefetch_related(
                "listings",
                Prefetch(
                    "variant_stocks",
                    queryset=CampaignVariantStock.objects.order_by("variant_id", "id"),
                ),
            ),
        ),
    )
    for product in products.order_by("merchant__slug", "sku"):
        for cells in _product_rows(product):
            yield {name: cell_guard(value) for name, value in cells.items()}


def _product_rows(product: Product) -> Iterator[dict[str, str]]:
    zone = ZoneInfo(product.merchant.time_zone)
    base = _blank_row(product.merchant) | _product_cells(product)
    names = [o.name for o in product.options.all()]
    variants = {v.pk: v for v in product.variants.all()}

    def variant_cells(variant: ProductVariant) -> dict[str, str]:
        return {
            "options": options_format(zip(names, variant.values, strict=False)),
            "variant_sku": variant.sku,
        }

    stocked: set[int] = set()
    for campaign in product.campaigns.all():
        listed = {listing.platform for listing in campaign.listings.all()}
        terms = _campaign_cells(campaign, networks_in_order(campaign.platform, listed), zone)
        stocks = list(campaign.variant_stocks.all())
        if not stocks:
            yield base | terms
        for stock in stocks:
            stocked.add(stock.variant_id)
            variant = variants[stock.variant_id]
            yield base | variant_cells(variant) | terms | {"stock": str(stock.stock_total)}
    unstocked = [v for pk, v in variants.items() if pk not in stocked]
    for variant in unstocked:
        yield base | variant_cells(variant)
    if not variants and not product.campaigns.all():
        yield base
