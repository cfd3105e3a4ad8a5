"""``path("chat/", include("chatauth.integrations.django.urls"))`` -> ``GET chat/token`` and
``POST chat/chatkitty/verify`` (ChatKitty's session check; 404 for other providers)."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "chatauth"
urlpatterns = [
    path("token", views.token, name="token"),
    path("chatkitty/verify", views.chatkitty_verify, name="chatkitty-verify"),
]
