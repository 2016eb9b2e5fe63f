"""URL map (DESIGN §10.1)."""

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from core import views as core_views
from core.health import HealthView

admin.site.site_header = "Hashcart back office"
admin.site.site_title = "Hashcart"
admin.site.index_title = "Campaigns, orders and shipments"
# The admin signs in through allauth: rate limits and the TOTP step apply (DESIGN §6).
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("", core_views.landing, name="landing"),
    path("healthz", HealthView.as_view(), name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/", include("config.api_urls")),
    path("link/", include("accounts.urls")),
    path("orders/", include("orders.urls")),
    path("fulfillment/", include("fulfillment.urls")),
    path("sandbox/", include("social.urls")),
]
