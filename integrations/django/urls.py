"""``path("chat/", include("chatauth.integrations.django.urls"))`` -> ``GET chat/token``,
``POST chat/token/refresh``, ``GET chat/chatauth.js`` and
``chat/<path>`` for the configured provider's own endpoints (404 where it declares none)."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "chatauth"
urlpatterns = [
    path("token", views.token, name="token"),
    path("token/refresh", views.refresh, name="refresh"),
    path("chatauth.js", views.script, name="script"),
    path("<path:path>", views.provider_endpoint, name="endpoint"),
]
