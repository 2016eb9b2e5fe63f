from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("", views.link, name="link"),
    path("identity/", views.link_identity, name="link_identity"),
    path("identity/status/<str:code>/", views.link_identity_status, name="link_identity_status"),
    path("card/", views.link_card, name="link_card"),
    path("card/stripe-return/", views.link_card_stripe_return, name="link_card_stripe_return"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
    path("card/<int:card_id>/remove/", views.card_remove_confirm, name="card_remove_confirm"),
    path("address/", views.link_address, name="link_address"),
    path("consent/", views.link_consent, name="link_consent"),
    path("settings/", views.account_settings, name="settings"),
    path("settings/<slug:action>/", views.settings_action, name="settings_action"),
]
