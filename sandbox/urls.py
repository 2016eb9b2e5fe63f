from django.urls import path

from sandbox import views

app_name = "sandbox"
urlpatterns = [
    path("", views.sandbox_home, name="home"),
    path("handle/", views.sandbox_pick_handle, name="pick_handle"),
    path("post/", views.sandbox_post, name="post"),
    path("posts/<int:post_id>/", views.sandbox_post_page, name="post_page"),
    path("timeline/", views.sandbox_timeline_fragment, name="timeline"),
    path("bank/authenticate/", views.sandbox_bank_authenticate, name="bank_authenticate"),
]
