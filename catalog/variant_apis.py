"""Products' options and variants and campaigns' variant stock over the API (issue 13), within
the token's merchant, through ``catalog.variant_services`` like the back office's inlines.
Whoever may change products (campaigns) may manage their options and variants (stock)."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from rest_framework import mixins, serializers, viewsets
from rest_framework.parsers import JSONParser

from catalog.models import Campaign, CampaignVariantStock, Product, ProductOption, ProductVariant
from catalog.variant_selectors import variant_stocks_with_waitlist_length
from catalog.variant_services import (
    option_delete,
    option_validate,
    variant_save,
    variant_stock_delete,
    variant_stock_save,
)
from core.api import MerchantScopedMixin, merchant_scope


def _scoped(serializer: serializers.Serializer, field: str, queryset: Any, lookup: str) -> None:
    """Limit a related field's choices to the token's merchant: another merchant's id is "not
    found", as if it did not exist."""
    request = serializer.context.get("request")
    if request is not None:
        merchant_id = merchant_scope(request)
        if merchant_id is not None:
            queryset = queryset.filter(**{lookup: merchant_id})
        serializer.fields[field].queryset = queryset  # type: ignore[attr-defined]


def _checked(call: Any) -> Any:
    """Run a service call, its ``ValidationError`` as the API's (400, keyed by field)."""
    try:
        return call()
    except DjangoValidationError as exc:
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        raise serializers.ValidationError(detail) from exc


class ProductOptionSerializer(serializers.ModelSerializer):
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.none())

    class Meta:
        model = ProductOption
        fields = ("id", "product", "position", "name")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _scoped(self, "product", Product.objects.all(), "merchant_id")

    def create(self, validated_data: dict[str, Any]) -> ProductOption:
        return self._save(ProductOption(**validated_data))

    def update(self, instance: ProductOption, validated_data: dict[str, Any]) -> ProductOption:
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return self._save(instance)

    def _save(self, option: ProductOption) -> ProductOption:
        _checked(lambda: option_validate(option))
        option.save()
        return option


class ProductVariantSerializer(serializers.ModelSerializer):
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.none())

    class Meta:
        model = ProductVariant
        fields = ("id", "product", "sku", "option1", "option2", "option3")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _scoped(self, "product", Product.objects.all(), "merchant_id")

    def create(self, validated_data: dict[str, Any]) -> ProductVariant:
        return _checked(lambda: variant_save(variant=ProductVariant(**validated_data)))

    def update(self, instance: ProductVariant, validated_data: dict[str, Any]) -> ProductVariant:
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return _checked(lambda: variant_save(variant=instance))


class VariantStockSerializer(serializers.ModelSerializer):
    campaign = serializers.PrimaryKeyRelatedField(queryset=Campaign.objects.none())
    variant = serializers.PrimaryKeyRelatedField(queryset=ProductVariant.objects.none())
    stock_reserved = serializers.IntegerField(read_only=True)
    waitlist_length = serializers.SerializerMethodField(
        help_text="Buyers waiting for this variant: the demand its stock could not serve."
    )

    class Meta:
        model = CampaignVariantStock
        fields = ("id", "campaign", "variant", "stock_total", "stock_reserved", "waitlist_length")

    def get_waitlist_length(self, obj: CampaignVariantStock) -> int:
        if not hasattr(obj, "waitlist_length"):  # just saved: read it
            rows = CampaignVariantStock.objects.filter(pk=obj.pk)
            obj = variant_stocks_with_waitlist_length(rows).get()
        return int(getattr(obj, "waitlist_length", 0))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _scoped(self, "campaign", Campaign.objects.all(), "merchant_id")
        _scoped(self, "variant", ProductVariant.objects.all(), "product__merchant_id")

    def create(self, validated_data: dict[str, Any]) -> CampaignVariantStock:
        stock = CampaignVariantStock(**validated_data)
        return _checked(lambda: variant_stock_save(stock=stock))

    def update(
        self, instance: CampaignVariantStock, validated_data: dict[str, Any]
    ) -> CampaignVariantStock:
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return _checked(lambda: variant_stock_save(stock=instance))


class _Base(
    MerchantScopedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    # JSON bodies only (and so documented): nothing here is a file upload.
    parser_classes = [JSONParser]


def _permissions(model: str) -> dict[str, str]:
    view, change = f"catalog.view_{model}", f"catalog.change_{model}"
    return {
        "list": view,
        "retrieve": view,
        "create": change,
        "partial_update": change,
        "destroy": change,
    }


class ProductOptionViewSet(_Base):
    """A product's options (at most three: Size, Colour…)."""

    queryset = ProductOption.objects.order_by("id")
    serializer_class = ProductOptionSerializer
    merchant_lookup = "product__merchant_id"
    action_permissions = _permissions("product")

    def perform_destroy(self, instance: ProductOption) -> None:
        _checked(lambda: option_delete(option=instance))


class ProductVariantViewSet(_Base):
    """A product's variants: one value per option, and a SKU of their own."""

    queryset = ProductVariant.objects.order_by("id")
    serializer_class = ProductVariantSerializer
    merchant_lookup = "product__merchant_id"
    action_permissions = _permissions("product")

    def perform_destroy(self, instance: ProductVariant) -> None:
        try:
            instance.delete()
        except ProtectedError as exc:
            raise serializers.ValidationError(
                "A campaign or an order holds this variant: it cannot be deleted."
            ) from exc


class VariantStockViewSet(_Base):
    """A campaign's stock of each variant it sells; the campaign's stock is their sum.
    Deleting a row is refused while orders hold units of it."""

    queryset = variant_stocks_with_waitlist_length(CampaignVariantStock.objects.order_by("id"))
    serializer_class = VariantStockSerializer
    merchant_lookup = "campaign__merchant_id"
    action_permissions = _permissions("campaign")

    def perform_destroy(self, instance: CampaignVariantStock) -> None:
        _checked(lambda: variant_stock_delete(stock=instance))
