"""URL map (DESIGN §10.1)."""

from django.contrib import admin
from django.urls import include, path

from core import views as core_views

admin.site.site_header = "Hashcart back office"
admin.site.site_title = "Hashcart"
admin.site.index_title = "Campaigns, orders and shipments"

urlpatterns = [
    path("", core_views.landing, name="landing"),
    path("admin/", admin.site.urls),
    path("orders/", include("orders.urls")),
    path("sandbox/", include("social.urls")),
]
