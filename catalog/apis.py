"""Campaigns over the API (DESIGN §10.3): list, create, read, change, pause and resume, all
within the token's merchant. Writes go through ``catalog.services`` like the admin's."""

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.models import Campaign, Product
from catalog.selectors import campaign_networks_prefetched, campaigns_with_waitlist_length
from catalog.services import campaign_save, campaign_set_paused
from core.api import MerchantScopedMixin, merchant_scope
from social.models import Platform


class CampaignSerializer(serializers.ModelSerializer):
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.none())
    stock_reserved = serializers.IntegerField(read_only=True)
    platforms = serializers.ListField(
        child=serializers.ChoiceField(choices=Platform.choices),
        min_length=1,
        max_length=len(Platform.choices),
        required=False,
        help_text="Every network the campaign runs on, with one hashtag and one stock pool "
        "(issue 13, item 7); the first is its `platform`. When writing, it replaces "
        "`platform` and the campaign's networks; without it, `platform` sets the first "
        "network and the others stay.",
    )
    waitlist_length = serializers.SerializerMethodField(
        help_text="Buyers waiting for a unit: the demand the stock could not serve."
    )

    class Meta:
        model = Campaign
        fields = (
            "id",
            "product",
            "platform",
            "platforms",
            "hashtag",
            "confirm_prefix",
            "price",
            "price_includes_tax",
            "currency",
            "stock_total",
            "stock_reserved",
            "waitlist_length",
            "per_buyer_limit",
            "starts_at",
            "ends_at",
            "paused",
        )
        read_only_fields = ("id", "stock_reserved", "waitlist_length", "paused")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            # Only the token's merchant's products can be chosen: another merchant's product id
            # is "not found", as if it did not exist.
            merchant_id = merchant_scope(request)
            products = Product.objects.all()
            if merchant_id is not None:
                products = products.filter(merchant_id=merchant_id)
            self.fields["product"].queryset = products  # type: ignore[attr-defined]

    def to_representation(self, instance: Campaign) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        data["platforms"] = list(campaign_networks_prefetched(instance))
        return data

    def get_waitlist_length(self, obj: Campaign) -> int:
        if not hasattr(obj, "waitlist_length"):  # just saved: read it
            obj = campaigns_with_waitlist_length(Campaign.objects.filter(pk=obj.pk)).get()
        return int(getattr(obj, "waitlist_length", 0))

    def create(self, validated_data: dict[str, Any]) -> Campaign:
        platforms = validated_data.pop("platforms", None)
        return campaign_save(
            campaign=Campaign(**validated_data),
            now=timezone.now(),
            actor=self._actor(),
            platforms=platforms,
        )

    def update(self, instance: Campaign, validated_data: dict[str, Any]) -> Campaign:
        platforms = validated_data.pop("platforms", None)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return campaign_save(
            campaign=instance, now=timezone.now(), actor=self._actor(), platforms=platforms
        )

    def _actor(self) -> Any:
        """The token's login: refused hashtags are counted and logged for it."""
        request = self.context.get("request")
        return request.user if request is not None else None


class CampaignViewSet(
    MerchantScopedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = campaigns_with_waitlist_length(Campaign.objects.prefetch_related("listings"))
    action_permissions = {
        "list": "catalog.view_campaign",
        "retrieve": "catalog.view_campaign",
        "create": "catalog.add_campaign",
        "partial_update": "catalog.change_campaign",
        "pause": "catalog.change_campaign",
        "resume": "catalog.change_campaign",
    }
    serializer_class = CampaignSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        """Pause the campaign: purchase posts are answered "closed" until it resumes."""
        return self._set_paused(paused=True)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        return self._set_paused(paused=False)

    def _set_paused(self, *, paused: bool) -> Response:
        campaign = self.get_object()
        campaign_set_paused(campaign_ids=[campaign.pk], paused=paused)
        campaign.refresh_from_db()
        return Response(self.get_serializer(campaign).data)
