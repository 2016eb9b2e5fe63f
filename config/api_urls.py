"""The merchant API under /api/v1/, its OpenAPI schema and its docs (DESIGN §10.3)."""

from django.urls import include, path, re_path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from catalog.apis import CampaignViewSet
from catalog.variant_apis import ProductOptionViewSet, ProductVariantViewSet, VariantStockViewSet
from core.api import IsMerchantStaff
from fulfillment.apis import ShipmentViewSet
from orders.apis import DisputeViewSet, OrderViewSet, ReturnViewSet
from orders.webhook_apis import WebhookEndpointViewSet

router = DefaultRouter()
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("orders", OrderViewSet, basename="order")
router.register("product-options", ProductOptionViewSet, basename="product-option")
router.register("product-variants", ProductVariantViewSet, basename="product-variant")
router.register("campaign-variant-stocks", VariantStockViewSet, basename="campaign-variant-stock")
router.register("disputes", DisputeViewSet, basename="dispute")
router.register("returns", ReturnViewSet, basename="return")
router.register("shipments", ShipmentViewSet, basename="shipment")
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@permission_classes([IsMerchantStaff])
def not_found(request: Request, rest: str = "") -> Response:
    """Any other path under /api/: a 404 in the API's error shape, not an HTML page."""
    raise NotFound("No such API endpoint.")


urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's script from this site: no inline script for the CSP.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^(?P<rest>[\s\S]*)$", not_found),
]
