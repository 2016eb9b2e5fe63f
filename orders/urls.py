from django.urls import path

from orders import views

app_name = "orders"
urlpatterns = [
    path("not-me/<str:token>/", views.not_me, name="not_me"),
    path("confirm/<str:token>/", views.email_confirm, name="email_confirm"),
    path("confirm-order/<str:token>/", views.private_confirm, name="private_confirm"),
    path("authenticate/<str:token>/", views.authenticate, name="authenticate"),
    path("<int:order_id>/", views.cardholder_order, name="cardholder_order"),
    path("cancel/", views.cardholder_order_cancel, name="cardholder_order_cancel"),
    path(
        "receipts/<int:order_id>.pdf", views.cardholder_receipt_pdf, name="cardholder_receipt_pdf"
    ),
    path(
        "credit-notes/<int:credit_note_id>.pdf",
        views.cardholder_credit_note_pdf,
        name="cardholder_credit_note_pdf",
    ),
    path("waitlist/<int:entry_id>/leave/", views.waitlist_leave_view, name="waitlist_leave"),
    path("return/", views.cardholder_return_request, name="cardholder_return_request"),
    path(
        "dispute/escalate/", views.cardholder_dispute_escalate, name="cardholder_dispute_escalate"
    ),
]
