"""URLs of the sample site: login/logout (django.contrib.auth), the chat page, the token
endpoint (``/chat/token``) and the admin (chat sessions listed, none of their tokens shown)."""

from chat import views
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", views.index, name="index"),
    path("chat/", views.index, name="chat"),
    path("whoami", views.whoami, name="whoami"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("chat/", include("chatauth.integrations.django.urls")),
    path("admin/", admin.site.urls),
]
