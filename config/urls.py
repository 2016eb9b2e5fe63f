"""URL map (DESIGN §10.1)."""

from allauth.account.decorators import secure_admin_login
from django.apps import apps
from django.contrib import admin
from django.urls import include, path

from catalog import views as catalog_views
from core.health import HealthView

admin.site.site_header = "Hashcart back office"
admin.site.site_title = "Hashcart"
admin.site.index_title = "Campaigns, orders and shipments"
# The admin signs in through allauth: rate limits and the TOTP step apply (DESIGN §6).
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("", catalog_views.landing, name="landing"),
    path("healthz", HealthView.as_view(), name="healthz"),
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
