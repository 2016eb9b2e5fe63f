"""CSV import and export of products, variants and campaigns in the admin (issue 14, item 6),
through the admin's views: upload, the preview with its row errors, the confirmation."""

import csv
import io
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.services import operator_upsert, staff_user_upsert
from catalog.import_format import COLUMNS, catalog_row_parse
from catalog.imports import CatalogImport
from catalog.models import (
    Campaign,
    CampaignListing,
    CampaignVariantStock,
    Merchant,
    Product,
    ProductOption,
    ProductVariant,
    default_platform,
)
from catalog.services import CampaignTerms, campaign_validate
from catalog.services import _prefix_unavailable as prefix_unavailable
from catalog.tests.factories import CampaignFactory, MerchantFactory
from tests.mfa import totp_enable

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

IMPORT = "admin:catalog_product_import"
EXAMPLE = Path(__file__).resolve().parents[1] / "static" / "catalog" / "products-import-example.csv"


def _staff(merchant: Merchant):
    user = staff_user_upsert(
        username=f"staff-{merchant.slug}",
        email=f"{merchant.slug}@example.com",
        password="pw-staff",
        merchant_id=merchant.pk,
    )
    totp_enable(user)
    return user


def _operator():
    user = operator_upsert(username="operator", email="op@example.com", password="pw-op")
    totp_enable(user)
    return user


def _csv(rows: list[dict[str, object]], columns=COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _preview(client, text: str):
    upload = SimpleUploadedFile("products.csv", text.encode(), content_type="text/csv")
    response = client.post(reverse(IMPORT), {"resource": "0", "format": "0", "import_file": upload})
    assert response.status_code == 200
    return response


def _errors(response) -> list[tuple[int, str]]:
    """The preview's errors as (row, column), read from the page's result."""
    result = response.context["result"]
    errors = [(0, str(e.error)) for e in result.base_errors]
    for row in result.invalid_rows:
        errors.extend((row.number, column) for column in row.error_dict)
    return errors


def _confirm(client, preview):
    form = preview.context["confirm_form"]
    assert form is not None, _errors(preview)
    return client.post(reverse("admin:catalog_product_process_import"), form.initial)


def _local(moment: datetime, zone: str = "America/New_York") -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _tees(count: int, *, starts: datetime, ends: datetime) -> list[dict[str, object]]:
    """``count`` tees, each with a campaign: two sizes (S, M) each, one size for tees 10 and 30.
    The rows of tee n: its S row, then its M row."""
    rows: list[dict[str, object]] = []
    for n in range(count):
        sizes = ("S",) if n in (10, 30) else ("S", "M")
        rows.extend(
            {
                "product_sku": f"TEE-{n}",
                "product_name": f"Tee {n}",
                "options": f"Size={size}",
                "variant_sku": f"TEE-{n}-{size}",
                "hashtag": f"BuyTee{n}",
                "starts_at": _local(starts),
                "ends_at": _local(ends),
                "price": "29.00",
                "stock": 5,
            }
            for size in sizes
        )
    return rows


def _row_of(rows, variant_sku: str) -> int:
    return next(n for n, row in enumerate(rows, start=1) if row["variant_sku"] == variant_sku)


def test_a_thousand_products_preview_their_five_errors_then_import_once_fixed(client, capsys):
    merchant = MerchantFactory()
    client.force_login(_staff(merchant))
    now = timezone.now()
    starts, ends = now + timedelta(days=1), now + timedelta(days=10)
    rows = _tees(1000, starts=starts, ends=ends)
    bad = {
        "TEE-10-S": ("hashtag", {"hashtag": "Buy-Tee10"}),
        "TEE-20-M": ("variant_sku", {"variant_sku": "TEE-19-M"}),  # tee 19's SKU
        "TEE-30-S": ("ends_at", {"ends_at": _local(starts - timedelta(hours=1))}),
        "TEE-40-M": ("stock", {"stock": -1}),
        "TEE-50-M": ("options", {"options": "Size=M; Fabric=Silk"}),
    }
    broken = [dict(row) for row in rows]
    for sku, (_, change) in bad.items():
        broken[_row_of(rows, sku) - 1] |= change

    began = time.monotonic()
    preview = _preview(client, _csv(broken))
    seconds = time.monotonic() - began

    assert sorted(_errors(preview)) == sorted(
        (_row_of(rows, sku), column) for sku, (column, _) in bad.items()
    )
    assert preview.context.get("confirm_form") is None  # nothing to confirm
    assert "Fabric" in preview.content.decode()  # the unknown option, named on the page
    assert not Product.objects.exists()
    assert not Campaign.objects.exists()

    began = time.monotonic()
    fixed = _preview(client, _csv(rows))
    fixed_seconds = time.monotonic() - began
    assert _errors(fixed) == []
    assert not Product.objects.exists()  # a preview writes nothing
    began = time.monotonic()
    done = _confirm(client, fixed)
    confirm_seconds = time.monotonic() - began

    assert done.status_code == 302
    assert Product.objects.filter(merchant=merchant).count() == 1000
    assert ProductVariant.objects.count() == len(rows) == 1998
    assert Campaign.objects.filter(merchant=merchant).count() == 1000
    assert CampaignVariantStock.objects.count() == 1998
    assert Campaign.objects.get(hashtag="BuyTee7").stock_total == 10
    with capsys.disabled():
        print(
            f"\n1,000 products ({len(rows)} rows): preview with errors {seconds:.1f} s, "
            f"preview {fixed_seconds:.1f} s, confirm {confirm_seconds:.1f} s "
            f"(load average {os.getloadavg()[0]:.1f})"
        )


def _queries(client, rows: list[dict[str, object]]) -> tuple[int, int]:
    """The queries of the preview and of the confirmation of ``rows``."""
    with CaptureQueriesContext(connection) as previewing:
        preview = _preview(client, _csv(rows))
    assert _errors(preview) == []
    with CaptureQueriesContext(connection) as confirming:
        assert _confirm(client, preview).status_code == 302
    return len(previewing), len(confirming)


def test_ten_times_the_rows_cost_no_more_queries(client):
    now = timezone.now()
    starts, ends = now + timedelta(days=1), now + timedelta(days=10)
    costs = {}
    for count in (10, 100):  # 20 and 198 rows, each a new catalogue, then each changed
        client.force_login(_staff(MerchantFactory(slug=f"shop{count}")))
        rows = [
            r | {"hashtag": f"{r['hashtag']}x{count}"}
            for r in _tees(count, starts=starts, ends=ends)
        ]
        created = _queries(client, rows)
        changed = _queries(
            client, [r | {"stock": 7, "product_name": f"{r['product_name']}!"} for r in rows]
        )
        costs[count] = (created, changed)
    assert ProductVariant.objects.filter(product__merchant__slug="shop100").count() == 198
    assert Campaign.objects.get(hashtag="BuyTee3x100").stock_total == 14
    assert Product.objects.get(sku="TEE-3", merchant__slug="shop100").name == "Tee 3!"
    (small_new, small_changed), (big_new, big_changed) = costs[10], costs[100]
    for small, big in ((small_new, big_new), (small_changed, big_changed)):
        assert big[0] <= small[0], costs  # the preview
        assert big[1] <= small[1], costs  # the confirmation


def test_a_campaigns_new_dates_and_networks_move_its_listings(client):
    merchant = MerchantFactory()
    client.force_login(_staff(merchant))
    now = timezone.now()
    row = {
        "product_sku": "MUG",
        "product_name": "Mug",
        "hashtag": "BuyMug",
        "starts_at": _local(now + timedelta(days=1)),
        "ends_at": _local(now + timedelta(days=2)),
        "price": "8",
        "stock": 3,
    }
    _confirm(client, _preview(client, _csv([row])))
    later = (now + timedelta(days=4)).replace(second=0, microsecond=0)
    moved = row | {"ends_at": _local(later), "networks": "mastodon; sandbox", "stock": 5}
    _confirm(client, _preview(client, _csv([moved])))

    campaign = Campaign.objects.get(hashtag="BuyMug")
    assert (campaign.platform, campaign.ends_at, campaign.stock_total) == ("mastodon", later, 5)
    listings = set(campaign.listings.values_list("platform", "hashtag_key", "ends_at"))
    assert listings == {("mastodon", "buymug", later), ("sandbox", "buymug", later)}


def test_rows_are_checked_against_what_is_stored(client):
    client.force_login(_staff(MerchantFactory()))
    now = timezone.now()
    cap = {
        "product_sku": "CAP",
        "product_name": "Cap",
        "options": "Size=M",
        "variant_sku": "CAP-M",
        "hashtag": "BuyCap",
        "starts_at": _local(now + timedelta(days=1)),
        "ends_at": _local(now + timedelta(days=2)),
        "price": "8",
        "stock": 5,
    }
    _confirm(client, _preview(client, _csv([cap])))
    # Orders hold 3 units.
    CampaignVariantStock.objects.update(stock_reserved=3)
    Campaign.objects.update(stock_reserved=3)
    rows = [
        {"product_sku": "HAT", "product_name": "Hat", "options": "Size=M", "variant_sku": "CAP-M"},
        cap | {"stock": 2},
        {
            "product_sku": "CAP",
            "product_name": "Cap",
            "options": "Size=L; Fit=Slim",
            "variant_sku": "CAP-L",
        },
    ]
    assert _errors(_preview(client, _csv(rows))) == [
        (1, "variant_sku"),
        (2, "stock"),
        (3, "options"),
    ]
    assert _errors(_preview(client, _csv([cap | {"stock": 3}]))) == []


def test_export_then_import_changes_nothing(client):
    merchant = MerchantFactory(time_zone="America/Los_Angeles")
    client.force_login(_staff(merchant))
    now = timezone.now().replace(microsecond=123456)
    rows = [
        {
            "product_sku": "TEE",
            "product_name": "=Tee, with a comma",  # a formula to a spreadsheet: guarded
            "description": '"Quoted" text',
            "options": f"Size={size}; Colour=Blue",
            "variant_sku": f"TEE-{size}",
            "hashtag": "#BuyTee",
            "networks": "mastodon; sandbox",
            "starts_at": (now + timedelta(hours=1, seconds=7)).isoformat(),
            "ends_at": _local(now + timedelta(days=3), merchant.time_zone),
            "price": "19.99",
            "price_includes_tax": "yes",
            "per_buyer_limit": 2,
            "stock": units,
        }
        for size, units in (("S", 3), ("M", 0))
    ] + [
        {
            "product_sku": "TEE",
            "product_name": "=Tee, with a comma",
            "description": '"Quoted" text',
            "options": "Size=L; Colour=Red",
            "variant_sku": "TEE-L",
        },
        {
            "product_sku": "MUG",
            "product_name": "Mug",
            "hashtag": "BuyMug",
            "starts_at": _local(now + timedelta(days=2)),
            "ends_at": _local(now + timedelta(days=4)),
            "price": "8",
            "stock": 12,
        },
        {"product_sku": "CAP", "product_name": "Cap"},
    ]
    _confirm(client, _preview(client, _csv(rows)))
    # Options given on its page to a product whose campaign keeps a stock of its own.
    ProductOption.objects.create(product=Product.objects.get(sku="MUG"), position=1, name="Glaze")
    snapshot = _catalogue()
    assert Product.objects.get(sku="TEE").name == "=Tee, with a comma"
    assert len(snapshot["variants"]) == 3

    exported = client.get(reverse("admin:catalog_product_export"))
    assert exported.status_code == 200
    text = exported.content.decode()
    assert "'=Tee, with a comma" in text

    again = _preview(client, text)
    assert _errors(again) == []
    assert {row.import_type for row in again.context["result"].rows} == {"skip"}
    _confirm(client, again)
    assert _catalogue() == snapshot


def _catalogue() -> dict[str, list[tuple]]:
    """Every catalogue row with every column (``updated_at`` included): equal means untouched."""
    models: dict[str, type[Any]] = {
        "products": Product,
        "options": ProductOption,
        "variants": ProductVariant,
        "campaigns": Campaign,
        "listings": CampaignListing,
        "stocks": CampaignVariantStock,
    }
    return {
        name: sorted(model.objects.values_list(*[f.attname for f in model._meta.concrete_fields]))
        for name, model in models.items()
    }


def test_staff_never_reach_another_merchants_product_through_its_sku(client):
    theirs = MerchantFactory(slug="theirs")
    mine = MerchantFactory(slug="mine")
    client.force_login(_staff(theirs))
    row = {
        "product_sku": "TEE",
        "product_name": "Their tee",
        "options": "Size=M",
        "variant_sku": "TEE-M",
    }
    _confirm(client, _preview(client, _csv([row])))
    before = _catalogue()

    client.force_login(_staff(mine))
    mine_row = row | {"product_name": "My tee", "options": "Size=M"}
    _confirm(client, _preview(client, _csv([mine_row])))

    assert Product.objects.get(merchant=theirs).name == "Their tee"
    assert Product.objects.get(merchant=mine).name == "My tee"
    theirs_now = {k: [r for r in v if r in before[k]] for k, v in _catalogue().items()}
    assert theirs_now == before  # their rows are all still there, unchanged
    exported = client.get(reverse("admin:catalog_product_export")).content.decode()
    assert "My tee" in exported
    assert "Their tee" not in exported
    # Naming the other merchant is refused, and writes nothing.
    named = _preview(client, _csv([mine_row | {"merchant": "theirs", "product_name": "X"}]))
    assert _errors(named) == [(1, "merchant")]
    assert Product.objects.get(merchant=theirs).name == "Their tee"


def test_operators_name_the_merchant_of_each_row(client):
    merchant = MerchantFactory(slug="shop")
    client.force_login(_operator())
    rows = [{"product_sku": "MUG", "product_name": "Mug"}]

    assert _errors(_preview(client, _csv(rows))) == [(1, "merchant")]
    _confirm(client, _preview(client, _csv([rows[0] | {"merchant": "shop"}])))

    assert Product.objects.get().merchant == merchant


def test_a_row_refused_at_confirmation_imports_nothing(client):
    staff = _staff(MerchantFactory())
    client.force_login(staff)
    now = timezone.now()
    rows = [
        {
            "product_sku": f"P{n}",
            "product_name": f"P{n}",
            "hashtag": f"BuyP{n}",
            "starts_at": _local(now + timedelta(days=1)),
            "ends_at": _local(now + timedelta(days=2)),
            "price": "5",
            "stock": 3,
        }
        for n in range(3)
    ]
    preview = _preview(client, _csv(rows))
    # Meanwhile another merchant's campaign takes the last row's hashtag.
    client.force_login(_staff(MerchantFactory()))
    _confirm(client, _preview(client, _csv([rows[2] | {"product_sku": "X"}])))
    taken = Product.objects.count()
    client.force_login(staff)

    done = _confirm(client, preview)

    assert done.status_code == 200
    assert "Nothing was imported" in done.content.decode()
    assert _errors(done) == [(3, "hashtag")]
    assert Product.objects.count() == taken == 1


def test_a_campaign_is_refused_as_on_its_page(client):
    """The import's checks of campaigns (run on the hashtags in use, read once) refuse what
    ``campaign_validate`` refuses, with its words, and count the file's earlier rows."""
    cache.clear()  # no refusals counted for this login by an earlier run
    merchant = MerchantFactory()
    client.force_login(_staff(merchant))
    now = timezone.now()
    starts, ends = now + timedelta(days=1), now + timedelta(days=3)
    # Another merchant's: a hashtag held later on, a prefix in use, a hashtag like "#Shoe<CODE>".
    CampaignFactory(
        hashtag="BuyLamp", starts_at=starts + timedelta(days=9), ends_at=ends + timedelta(days=9)
    )
    CampaignFactory(hashtag="BuyRug", confirm_prefix="Rug")
    CampaignFactory(hashtag="ShoeAB12C")
    dates = {"starts_at": _local(starts), "ends_at": _local(ends), "price": "5", "stock": 1}
    rows = [
        {"product_sku": "LAMP", "product_name": "Lamp", "hashtag": "BuyLamp"},
        {"product_sku": "RUG", "product_name": "Rug", "hashtag": "RugXY34Z"},
        {
            "product_sku": "SHOE",
            "product_name": "Shoe",
            "hashtag": "BuyShoe",
            "confirm_prefix": "Shoe",
        },
        {"product_sku": "MUG", "product_name": "Mug", "hashtag": "BuyMug"},
        # The row before holds it on overlapping dates; a third row's prefix looks like it.
        {
            "product_sku": "CUP",
            "product_name": "Cup",
            "hashtag": "buymug",
            "starts_at": _local(ends - timedelta(hours=1)),
            "ends_at": _local(ends + timedelta(days=1)),
        },
        {"product_sku": "HAT", "product_name": "Hat", "hashtag": "BuyHats", "confirm_prefix": "B"},
    ]
    rows = [dates | row for row in rows]
    preview = _preview(client, _csv(rows))

    errors = {row.number: row.error_dict for row in preview.context["result"].invalid_rows}
    assert sorted(errors) == [1, 2, 3, 5, 6]
    for number, column in ((1, "hashtag"), (2, "hashtag"), (3, "confirm_prefix")):
        row = rows[number - 1]
        terms = CampaignTerms(
            platform=default_platform(),
            hashtag=str(row["hashtag"]),
            confirm_prefix=str(row.get("confirm_prefix", "Confirm")),
            starts_at=starts.replace(second=0, microsecond=0),
            ends_at=ends.replace(second=0, microsecond=0),
            merchant_id=merchant.pk,
        )
        with pytest.raises(ValidationError) as refused:
            campaign_validate(terms=terms, now=timezone.now())
        assert errors[number][column] == refused.value.message_dict[column]
    assert "#buymug is held by another of your campaigns" in errors[5]["hashtag"][0]
    assert errors[6] == {"confirm_prefix": [prefix_unavailable("B")]}  # #BuyMug, #B<CODE>
    assert (
        LogEntry.objects.filter(change_message__startswith="Campaign write refused").count() == 0
    )  # the preview's audit is rolled back with it


def test_refused_hashtags_are_throttled_per_login_within_a_file(client, settings):
    cache.clear()
    settings.HASHCART = settings.HASHCART | {"HASHTAG_REFUSALS_PER_HOUR": 2}
    client.force_login(_staff(MerchantFactory()))
    now = timezone.now()
    taken = [CampaignFactory(ends_at=now + timedelta(days=5)) for _ in range(3)]
    rows = [
        {
            "product_sku": f"P{n}",
            "product_name": f"P{n}",
            "hashtag": campaign.hashtag,
            "starts_at": _local(now + timedelta(days=10)),
            "ends_at": _local(now + timedelta(days=11)),
            "price": "5",
            "stock": 1,
        }
        for n, campaign in enumerate(taken)
    ]
    errors = _preview(client, _csv(rows)).context["result"].invalid_rows
    messages = [row.error_dict["hashtag"][0] for row in errors]
    assert messages[:2] == [
        f"#{c.hashtag} is unavailable on this platform. Choose another hashtag." for c in taken[:2]
    ]
    assert messages[2].startswith("Too many refused hashtags")


def test_a_hashtag_taken_while_the_file_is_written_imports_nothing():
    """Between the checks and the bulk write another writer takes a hashtag: the database's
    constraint refuses the write, reported as the file's error, and nothing is left."""
    merchant = MerchantFactory()
    now = timezone.now()
    rows = _tees(3, starts=now + timedelta(days=1), ends=now + timedelta(days=2))
    plan = CatalogImport(now=now, actor=None)
    parsed = [catalog_row_parse(row, zone=ZoneInfo(merchant.time_zone)) for row in rows]
    plan.load((row, merchant) for row in parsed)
    for number, row in enumerate(parsed, start=1):
        plan.row(row, number=number, merchant=merchant)
    CampaignFactory(hashtag="BuyTee2", starts_at=now, ends_at=now + timedelta(days=3))

    with pytest.raises(ValidationError, match="nothing was imported"):
        plan.write()

    assert not Product.objects.filter(merchant=merchant).exists()
    assert not ProductVariant.objects.filter(product__merchant=merchant).exists()


def test_rows_of_one_product_or_campaign_must_agree(client):
    client.force_login(_staff(MerchantFactory()))
    now = timezone.now()
    campaign = {
        "hashtag": "BuyTee",
        "starts_at": _local(now + timedelta(days=1)),
        "ends_at": _local(now + timedelta(days=2)),
        "price": "5",
        "stock": 1,
    }
    rows = [
        {"product_sku": "TEE", "product_name": "Tee", "options": "Size=S", "variant_sku": "S"}
        | campaign,
        {"product_sku": "TEE", "product_name": "Tee", "options": "Size=M", "variant_sku": "M"}
        | campaign
        | {"price": "6"},
        {"product_sku": "TEE", "product_name": "Tea", "options": "Size=L", "variant_sku": "L"},
        {"product_sku": "TEE", "product_name": "Tee", "options": "Size=S", "variant_sku": "S"}
        | campaign,
        {"product_sku": "TEE", "product_name": "Tee", "options": "Size=L", "variant_sku": "L"}
        | campaign
        | {"hashtag": "#"},
    ]
    assert _errors(_preview(client, _csv(rows))) == [
        (2, "hashtag"),
        (3, "product_name"),
        (4, "stock"),
        (5, "hashtag"),
    ]


def test_each_error_shows_in_its_column(client):
    client.force_login(_staff(MerchantFactory()))
    rows = [
        {"product_sku": "P" * 65, "product_name": "Too long a SKU"},
        {"product_sku": "TEE", "product_name": "Tee", "options": "Size=X L", "variant_sku": "T"},
        {"product_sku": "CAP", "product_name": "Cap", "options": "Size=M", "variant_sku": "CAP"},
    ]
    assert _errors(_preview(client, _csv(rows))) == [
        (1, "product_sku"),
        (2, "options"),
        (3, "variant_sku"),  # the product's own SKU
    ]


def test_a_file_without_the_required_columns_is_refused_as_a_whole(client):
    client.force_login(_staff(MerchantFactory()))
    # Headers are read whatever their case, with spaces for underscores.
    assert _errors(_preview(client, "Product SKU,Product name\nTEE,Tee\n")) == []
    preview = _preview(client, "name,sku\nTee,TEE\n")
    assert (
        "<li>The file&#x27;s first row names the columns: missing column(s) product_sku, "
        "product_name" in preview.content.decode()
    )
    assert "Traceback" not in preview.content.decode()
    assert not Product.objects.exists()


@time_machine.travel(datetime(2026, 11, 1, 12, tzinfo=ZoneInfo("UTC")), tick=False)
def test_the_example_file_imports(client):
    merchant = MerchantFactory()
    client.force_login(_staff(merchant))
    products = client.get(reverse("admin:catalog_product_changelist")).content.decode()
    assert reverse(IMPORT) in products
    assert reverse("admin:catalog_product_export") in products
    page = client.get(reverse(IMPORT)).content.decode()
    assert "products-import-example.csv" in page  # linked from the import page

    _confirm(client, _preview(client, EXAMPLE.read_text()))

    tee = Campaign.objects.get(hashtag="BuyLogoTee")
    assert tee.stock_total == 140
    assert tee.starts_at == datetime(2026, 12, 1, 9, tzinfo=ZoneInfo(merchant.time_zone))
    assert set(tee.listings.values_list("platform", flat=True)) == {"x", "mastodon"}
    assert Campaign.objects.get(hashtag="BuyEnamelMug").stock_total == 100
    assert ProductVariant.objects.filter(product__sku="CAP").count() == 1


def test_staff_without_the_rights_to_write_campaigns_cannot_import(client):
    merchant = MerchantFactory()
    user = _staff(merchant)
    user.groups.clear()
    client.force_login(user)
    assert client.get(reverse(IMPORT)).status_code == 403
