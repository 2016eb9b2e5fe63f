"""Merchant staff see and change only their own merchant's rows in the back office (§10.2)."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from accounts.services import operator_upsert, staff_user_upsert
from catalog.models import Campaign
from catalog.tests.factories import CampaignFactory, ProductFactory
from core.scoping import merchant_lookup_of
from fulfillment.tests.factories import ShipmentFactory
from orders.tests.factories import OrderFactory
from tests.mfa import totp_enable

pytestmark = pytest.mark.django_db


class World:
    """Two merchants, A and B, each with a product, a campaign, an order and a shipment."""

    def __init__(self):
        self.a_campaign = CampaignFactory()
        self.b_campaign = CampaignFactory()
        # A second campaign each, so that the campaign list filter has choices to show.
        self.a_other_campaign = CampaignFactory(product=self.a_campaign.product)
        CampaignFactory(product=self.b_campaign.product)
        self.a, self.b = self.a_campaign.merchant, self.b_campaign.merchant
        self.a_product, self.b_product = self.a_campaign.product, self.b_campaign.product
        self.a_shipment = ShipmentFactory(order=OrderFactory(campaign=self.a_campaign))
        self.b_shipment = ShipmentFactory(order=OrderFactory(campaign=self.b_campaign))
        self.a_order, self.b_order = self.a_shipment.order, self.b_shipment.order
        self.staff_a = staff_user_upsert(
            username="staff-a", email="a@example.com", password="pw-staff-a", merchant_id=self.a.pk
        )
        totp_enable(self.staff_a)

    def objects_of_b(self):
        return {
            "catalog_merchant": self.b,
            "catalog_product": self.b_product,
            "catalog_campaign": self.b_campaign,
            "orders_order": self.b_order,
            "fulfillment_shipment": self.b_shipment,
        }

    def objects_of_a(self):
        return {
            "catalog_merchant": self.a,
            "catalog_product": self.a_product,
            "catalog_campaign": self.a_campaign,
            "orders_order": self.a_order,
            "fulfillment_shipment": self.a_shipment,
        }


@pytest.fixture
def world():
    return World()


@pytest.fixture
def staff_client(client, world):
    client.force_login(world.staff_a)
    return client


MODELS = [
    "catalog_merchant",
    "catalog_product",
    "catalog_campaign",
    "orders_order",
    "fulfillment_shipment",
]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("view", ["change", "delete", "history"])
def test_staff_get_404_on_every_view_of_another_merchants_object(staff_client, world, model, view):
    obj = world.objects_of_b()[model]
    response = staff_client.get(reverse(f"admin:{model}_{view}", args=[obj.pk]))
    assert response.status_code in (403, 404)


@pytest.mark.parametrize("model", MODELS)
def test_staff_can_open_their_own_objects(staff_client, world, model):
    obj = world.objects_of_a()[model]
    response = staff_client.get(reverse(f"admin:{model}_change", args=[obj.pk]))
    assert response.status_code == 200


@pytest.mark.parametrize("model", MODELS)
def test_change_lists_hold_only_the_staff_merchants_rows(staff_client, world, model):
    response = staff_client.get(reverse(f"admin:{model}_changelist"))
    assert response.status_code == 200
    shown = {obj.pk for obj in response.context["cl"].result_list}
    assert world.objects_of_a()[model].pk in shown
    assert world.objects_of_b()[model].pk not in shown


def test_filtering_a_change_list_by_another_merchant_shows_nothing(staff_client, world):
    response = staff_client.get(
        reverse("admin:orders_order_changelist"), {"campaign__id__exact": world.b_campaign.pk}
    )
    assert list(response.context["cl"].result_list) == []


def test_staff_cannot_post_a_change_to_another_merchants_campaign(staff_client, world):
    url = reverse("admin:catalog_campaign_change", args=[world.b_campaign.pk])
    response = staff_client.post(url, {"hashtag": "Hijacked", "paused": "on"})
    assert response.status_code in (403, 404)
    world.b_campaign.refresh_from_db()
    assert world.b_campaign.hashtag != "Hijacked"


def test_campaign_form_offers_only_the_staff_merchants_products(staff_client, world):
    response = staff_client.get(reverse("admin:catalog_campaign_add"))
    choices = set(response.context["adminform"].form.fields["product"].queryset)
    assert world.a_product in choices
    assert world.b_product not in choices


def _campaign_post(product, **overrides):
    now = timezone.now()
    data = {
        "product": product.pk,
        "platform": "sandbox",
        "hashtag": "BuyNewThing",
        "confirm_prefix": "Confirm",
        "price": "99.00",
        "currency": "USD",
        "stock_total": "5",
        "per_buyer_limit": "1",
        "starts_at_0": now.strftime("%Y-%m-%d"),
        "starts_at_1": now.strftime("%H:%M:%S"),
        "ends_at_0": (now + timedelta(days=7)).strftime("%Y-%m-%d"),
        "ends_at_1": "12:00:00",
    }
    data.update(overrides)
    return data


def test_staff_cannot_create_a_campaign_for_another_merchants_product(staff_client, world):
    response = staff_client.post(
        reverse("admin:catalog_campaign_add"), _campaign_post(world.b_product)
    )
    assert response.status_code == 200
    assert "product" in response.context["adminform"].form.errors
    assert not Campaign.objects.filter(hashtag="BuyNewThing").exists()


def test_staff_create_a_campaign_for_their_own_product(staff_client, world):
    response = staff_client.post(
        reverse("admin:catalog_campaign_add"), _campaign_post(world.a_product)
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get(hashtag="BuyNewThing")
    assert campaign.merchant == world.a
    assert campaign.hashtag_key == "buynewthing"


def test_campaign_form_rejects_a_hashtag_held_by_another_merchant(staff_client, world):
    response = staff_client.post(
        reverse("admin:catalog_campaign_add"),
        _campaign_post(world.a_product, hashtag=f"#{world.b_campaign.hashtag.upper()}"),
    )
    errors = response.context["adminform"].form.errors
    assert "unavailable" in errors["hashtag"][0]
    # The message must not reveal whose campaign it is.
    assert world.b.name not in errors["hashtag"][0]


def test_campaign_form_answers_a_clash_alike_before_inside_and_after_the_rivals_window(
    staff_client, world
):
    now = timezone.now()
    world.b_campaign.starts_at = now + timedelta(days=10)
    world.b_campaign.ends_at = now + timedelta(days=20)
    world.b_campaign.save()
    answers = []
    for start, end in ((1, 5), (12, 14), (25, 30)):
        data = _campaign_post(world.a_product, hashtag=world.b_campaign.hashtag)
        data.update(
            {
                "starts_at_0": (now + timedelta(days=start)).strftime("%Y-%m-%d"),
                "ends_at_0": (now + timedelta(days=end)).strftime("%Y-%m-%d"),
            }
        )
        response = staff_client.post(reverse("admin:catalog_campaign_add"), data)
        answers.append(response.context["adminform"].form.errors.get_json_data())
    assert answers[0] == answers[1] == answers[2]
    assert "unavailable" in answers[0]["hashtag"][0]["message"]
    assert str(now.year) not in answers[0]["hashtag"][0]["message"]


def test_list_filters_offer_only_the_staff_merchants_campaigns(staff_client, world):
    response = staff_client.get(reverse("admin:orders_order_changelist"))
    campaign_filter = next(
        spec
        for spec in response.context["cl"].filter_specs
        if getattr(spec, "field_path", "") == "campaign"
    )
    offered = {pk for pk, _ in campaign_filter.lookup_choices}
    assert offered == {world.a_campaign.pk, world.a_other_campaign.pk}


def _export(client, model, data):
    return client.post(reverse(f"admin:{model}_changelist"), {"action": "export_csv", **data})


@pytest.mark.parametrize("model", MODELS)
def test_export_of_everything_holds_only_the_staff_merchants_rows(staff_client, world, model):
    response = _export(
        staff_client,
        model,
        {
            "select_across": "1",
            "index": "0",
            ACTION_CHECKBOX_NAME: [world.objects_of_a()[model].pk],
        },
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    model_class = type(world.objects_of_a()[model])
    expected = set(
        model_class.objects.filter(**{merchant_lookup_of(model_class): world.a.pk}).values_list(
            "pk", flat=True
        )
    )
    assert world.objects_of_a()[model].pk in expected
    assert {int(row["id"]) for row in rows} == expected


def test_export_of_another_merchants_ids_exports_none_of_them(staff_client, world):
    response = _export(
        staff_client,
        "orders_order",
        {"index": "0", ACTION_CHECKBOX_NAME: [world.b_order.pk, world.a_order.pk]},
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [int(row["id"]) for row in rows] == [world.a_order.pk]


@pytest.mark.parametrize(
    "model",
    [
        "accounts_user",
        "accounts_cardholder",
        "social_post",
        "social_platformaccount",
        "social_reply",
    ],
)
def test_staff_cannot_see_people_or_the_inbox(staff_client, model):
    response = staff_client.get(reverse(f"admin:{model}_changelist"))
    assert response.status_code == 403


def test_staff_without_a_merchant_see_no_rows(client, world):
    lost = staff_user_upsert(
        username="lost", email="lost@example.com", password="pw-lost", merchant_id=world.a.pk
    )
    lost.merchant = None
    lost.save(update_fields=["merchant"])
    totp_enable(lost)
    client.force_login(lost)
    response = client.get(reverse("admin:orders_order_changelist"))
    assert response.status_code == 403


def test_staff_add_products_only_to_their_own_merchant(staff_client, world):
    response = staff_client.post(
        reverse("admin:catalog_product_add"),
        {"name": "Sneaky", "sku": "SNK-1", "merchant": world.b.pk, "description": ""},
    )
    assert response.status_code == 302
    assert ProductFactory._meta.model.objects.get(sku="SNK-1").merchant == world.a


def test_operators_see_every_merchant(client, world):
    operator = operator_upsert(username="op", email="op@example.com", password="pw-op")
    totp_enable(operator)
    client.force_login(operator)
    response = client.get(reverse("admin:orders_order_changelist"))
    shown = {obj.pk for obj in response.context["cl"].result_list}
    assert {world.a_order.pk, world.b_order.pk} <= shown


# --- No cardholder data for merchant staff (issue 10, item 9) -----------------------------------
def _order_pages(client, order):
    """The change list, a search by handle, the order's page and its CSV export, as text."""
    changelist = reverse("admin:orders_order_changelist")
    pages = [
        client.get(changelist),
        client.get(changelist, {"q": order.author_handle}),
        client.get(reverse("admin:orders_order_change", args=[order.pk])),
        client.post(
            changelist,
            {
                "action": "export_csv",
                "select_across": "1",
                "index": "0",
                ACTION_CHECKBOX_NAME: [order.pk],
            },
        ),
    ]
    assert [page.status_code for page in pages] == [200, 200, 200, 200]
    return [page.content.decode() for page in pages]


def test_staff_order_pages_show_the_handle_and_a_buyer_reference_never_email_or_card(
    staff_client, world
):
    order = world.a_order
    email, card = order.cardholder.user.email, str(order.card)
    for text in _order_pages(staff_client, order):
        assert email not in text
        assert card not in text
        assert "••••" not in text
    from orders.selectors import order_buyer_reference

    reference = order_buyer_reference(
        merchant_id=order.merchant_id, cardholder_id=order.cardholder_id
    )
    changelist, _, change, _ = _order_pages(staff_client, order)
    assert reference in changelist
    assert reference in change
    assert order.author_handle in change


def test_operators_see_the_cardholder_and_card_of_an_order(client, world):
    operator = operator_upsert(username="op", email="op@example.com", password="pw-op-12345")
    totp_enable(operator)
    client.force_login(operator)
    change = _order_pages(client, world.a_order)[2]
    assert world.a_order.cardholder.user.email in change
    assert str(world.a_order.card) in change


def test_a_buyer_reference_is_stable_per_merchant_and_unrelated_across_merchants(world):
    from orders.selectors import order_buyer_reference

    cardholder = world.a_order.cardholder
    card = world.a_order.card
    second = OrderFactory(campaign=world.a_other_campaign, cardholder=cardholder, card=card)
    at_b = OrderFactory(campaign=world.b_campaign, cardholder=cardholder, card=card)
    refs = [
        order_buyer_reference(merchant_id=o.merchant_id, cardholder_id=o.cardholder_id)
        for o in (world.a_order, second, at_b)
    ]
    assert refs[0] == refs[1] != refs[2]
    other = order_buyer_reference(merchant_id=world.a.pk, cardholder_id=cardholder.pk + 1)
    assert other != refs[0]
