"""URLs of the test project: the token endpoint, login/logout, and views that read the chat
session in each supported way (sync, async, decorator, mixin)."""

from __future__ import annotations

from typing import Any

from chatauth.integrations.django.views import ChatRequiredMixin, chat_required
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views import View
from rest_framework_simplejwt.views import (
    TokenBlacklistView,
    TokenObtainPairView,
    TokenRefreshView,
)


# The session's own JSON (the token endpoint's shape): the user's token, to its owner.
def sync_chat(request: HttpRequest) -> JsonResponse:
    return JsonResponse(request.chat.to_json())


async def async_chat(request: HttpRequest) -> JsonResponse:
    chat = await request.achat()
    return JsonResponse(chat.to_json())


async def async_chat_twice(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"uids": [(await request.achat()).uid, (await request.achat()).uid]})


async def async_forces_lazy(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"uid": request.chat.uid})  # must raise SynchronousOnlyOperation


async def async_login_as(request: HttpRequest, username: str) -> JsonResponse:
    from asgiref.sync import sync_to_async
    from django.contrib import auth

    user = await auth.get_user_model()._default_manager.aget(username=username)
    # Django 5.0+ has alogin() (it flushes through session.aflush()); on 4.2 an async view
    # logs in the way Django's docs say, through sync_to_async(login).
    alogin = getattr(auth, "alogin", None) or sync_to_async(auth.login)
    await alogin(request, user)
    return JsonResponse({"ok": True})


def read_then_logout(request: HttpRequest) -> JsonResponse:
    from django.contrib.auth import logout

    uid = request.chat.uid
    logout(request)
    return JsonResponse({"uid": uid})


def untouched(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


# Loads the session (for the user) and leaves it unchanged: what most pages of an app do.
def whoami(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"username": request.user.get_username()})


@chat_required
def decorated(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"uid": request.chat.uid})


@chat_required
async def decorated_async(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"uid": (await request.achat()).uid})


class MixinView(ChatRequiredMixin, View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"uid": request.chat.uid})


def _ninja_api() -> Any:
    from chatauth.integrations.django.ninja import chat_router
    from ninja import NinjaAPI
    from ninja.security import HttpBearer
    from rest_framework.authtoken.models import Token

    class TokenBearer(HttpBearer):
        openapi_scheme = "token"

        def authenticate(self, request: HttpRequest, token: str) -> Any:
            return Token.objects.select_related("user").filter(key=token).first()

    api = NinjaAPI(urls_namespace="ninja-chat")
    api.add_router("/chat/", chat_router(auth=TokenBearer()))
    return api


urlpatterns = [
    path("chat/", include("chatauth.integrations.django.urls")),
    path("api/chat/", include("chatauth.integrations.django.drf")),
    path("api/jwt/", TokenObtainPairView.as_view()),
    path("api/jwt/refresh/", TokenRefreshView.as_view()),
    path("api/jwt/logout/", TokenBlacklistView.as_view()),
    path("ninja/", _ninja_api().urls),
    path("_allauth/", include("allauth.headless.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("sync/", sync_chat),
    path("async/", async_chat),
    path("async-twice/", async_chat_twice),
    path("async-lazy/", async_forces_lazy),
    path("untouched/", untouched),
    path("read-then-logout/", read_then_logout),
    path("whoami/", whoami),
    path("async-login/<str:username>/", async_login_as),
    path("decorated/", decorated),
    path("decorated-async/", decorated_async),
    path("mixin/", MixinView.as_view()),
]
