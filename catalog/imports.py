"""Products, their variants and their campaigns written from CSV rows, and read back as rows
(issue 14, item 6): the format is ``catalog.import_format``'s; ``catalog.resources`` adapts both
to django-import-export.

A product sold in several campaigns has one row per variant in each; every row repeats its
product's and its campaign's columns, and rows that disagree on them are refused (naming the
first row). Rows are matched to what exists by natural keys inside the importing merchant: a
product by its SKU, a variant by its product and SKU, a campaign by its hashtag and start.

A file is checked as a whole (``CatalogImport``): what its rows may touch is read in a few
queries (``catalog.import_catalogue``, and everyone's hashtags in ``catalog.import_hashtags``),
every row is checked in memory by the rules of the admin forms' services, against the catalogue
as the rows before it leave it, then everything is written in bulk. A preview or a thousand-row
file thus costs the same few dozen queries as a ten-row one. The hashtag and date rules are the
form's own function (``campaign_terms_errors``); the others (the models' field validation,
``option_validate``, ``variant_validate``, the availability part of ``campaign_validate`` with
its refusals counted and logged, ``variant_stock_validate``) are restated over the loaded rows,
because those functions query per object: a change to them belongs in both places, and the
tests hold the import's refusals to the forms' messages. The caller holds the transaction that
makes a file all or nothing; the database's constraints (one campaign per hashtag at a time,
stock no lower than orders hold) decide a race with another writer, and then nothing is
imported. The export is ``catalog.export_rows``.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, OperationalError, transaction

from catalog.export_rows import (  # a row as it was before, to tell what it changed
    blank_row,
    campaign_cells,
    product_cells,
)
from catalog.import_catalogue import CampaignPlan, Catalogue, Undo
from catalog.import_format import (
    COLUMNS,
    CatalogRow,
    options_format,
)
from catalog.import_hashtags import HashtagsInUse
from catalog.models import (
    MAX_OPTIONS,
    Campaign,
    CampaignVariantStock,
    Merchant,
    Product,
    ProductOption,
    ProductVariant,
    default_platform,
)
from catalog.selectors import networks_in_order
from catalog.services import (
    CampaignTerms,
    campaign_clean_hashtag,
)
from catalog.services import (
    _stock_added as stock_added,
)
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
        self._states: dict[int, Catalogue] = {}
        self._hashtags = HashtagsInUse(now)

    def load(self, rows: Iterable[tuple[CatalogRow, Merchant]]) -> None:
        """Read what ``rows`` may touch: their merchants' products, options, variants,
        campaigns and stocks by SKU and hashtag, and every hashtag and prefix in use."""
        by_merchant: dict[int, tuple[Merchant, list[CatalogRow]]] = {}
        for row, merchant in rows:
            by_merchant.setdefault(merchant.pk, (merchant, []))[1].append(row)
        keys: set[str] = set()
        for merchant, its_rows in by_merchant.values():
            if merchant.pk not in self._states:
                self._states[merchant.pk] = Catalogue.load(merchant, its_rows)
            keys |= {hashtag_key(r.hashtag) for r in its_rows if r.hashtag}
        self._hashtags.load(keys)

    def row(self, row: CatalogRow, *, number: int, merchant: Merchant) -> RowOutcome:
        """Check ``row`` (the file's row ``number``, one of those given to ``load``) and note
        what it writes. Raises ``ValidationError`` keyed by column (``COLUMNS``); the row then
        leaves nothing."""
        if merchant.pk not in self._states:
            # Its catalogue was not read: its products would all look new.
            raise ValueError(f"Load the rows of {merchant.slug} before checking them.")
        undo = Undo()
        try:
            with _columns({}):
                return self._row(row, number, self._states[merchant.pk], undo)
        except ValidationError:
            undo.rollback()
            raise

    def _row(self, row: CatalogRow, number: int, state: "Catalogue", undo: "Undo") -> RowOutcome:
        changes = _Changes()
        before = blank_row(state.merchant)
        product = state.products.get(row.product_sku)
        if product is not None:
            before |= product_cells(product)
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
        state: "Catalogue",
        product: Product | None,
        changes: _Changes,
        undo: "Undo",
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
        state: "Catalogue",
        product: Product,
        changes: _Changes,
        before: dict[str, str],
        undo: "Undo",
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
        state: "Catalogue",
        variant: ProductVariant | None,
        changes: _Changes,
        before: dict[str, str],
        undo: "Undo",
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
            plan = CampaignPlan(campaign=campaign, product_sku=row.product_sku)
            changes.created = True
        else:
            campaign = plan.campaign
            if plan.product_sku != row.product_sku:
                raise ValidationError(
                    {"hashtag": f"#{campaign.hashtag} from this start sells {plan.product_sku}."}
                )
            networks = plan.networks
            before |= campaign_cells(campaign, networks, zone)
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
        self, plan: "CampaignPlan", platforms: tuple[str, ...], undo: "Undo"
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
        plan: "CampaignPlan",
        variant: ProductVariant,
        units: int,
        changes: _Changes,
        before: dict[str, str],
        undo: "Undo",
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
