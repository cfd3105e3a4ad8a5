"""``path("chat/", include("chatauth.integrations.django.urls"))`` -> ``GET chat/token``."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "chatauth"
urlpatterns = [path("token", views.token, name="token")]
