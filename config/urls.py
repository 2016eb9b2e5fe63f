"""URL map (DESIGN §10.1)."""

from allauth.account.decorators import secure_admin_login
from django.apps import apps
from django.contrib import admin
from django.urls import include, path
from health_check.views import HealthCheckView

from catalog import views as catalog_views

admin.site.site_header = "Hashcart back office"
admin.site.site_title = "Hashcart"
admin.site.index_title = "Campaigns, orders and shipments"
# The admin signs in through allauth: rate limits and the TOTP step apply (DESIGN §6).
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("", catalog_views.landing, name="landing"),
    path(
        "healthz",
        HealthCheckView.as_view(
            checks=[
                "health_check.checks.Database",
                "core.health.Broker",
                "core.health.FeedLag",
                "core.health.PaymentFailures",
            ]
        ),
        name="healthz",
    ),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/", include("config.api_urls")),
    path("link/", include("accounts.urls")),
    path("orders/", include("orders.urls")),
    path("fulfillment/", include("fulfillment.urls")),
]
# The sandbox network's page, where the fake world is installed (not in production).
if apps.is_installed("sandbox"):
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
