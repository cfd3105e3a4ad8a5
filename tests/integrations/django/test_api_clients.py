"""API clients without a session cookie: REST framework (TokenAuthentication, SimpleJWT),
django-ninja, each with the real package. The provider is CometChat's emulator over real HTTP,
so the end of a chat session is seen where it matters: the token is dead at the provider.

The chat session is bound to the client's credential: it ends when the credential ends (the
REST framework ``Token`` deleted, the SimpleJWT refresh token blacklisted), and a browser of
the same user keeps its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chatauth.integrations.django.conf import get_service, reset
from django.test import Client
from rest_framework.authtoken.models import Token

from chatauth.credentials import credential_session_id
from chatauth.testing.cometchat import DEFAULT_API_KEY, DEFAULT_APP_ID, CometChatEmulator
from chatauth.tokens import SessionKey

pytestmark = pytest.mark.django_db

JSON = "application/json"


@pytest.fixture
def cometchat(settings: Any, cometchat_emulator: CometChatEmulator) -> Iterator[CometChatEmulator]:
    settings.CHATAUTH = {
        "PROVIDER": "cometchat",
        "COMETCHAT_APP_ID": DEFAULT_APP_ID,
        "COMETCHAT_API_KEY": DEFAULT_API_KEY,
        "COMETCHAT_BASE_URL": cometchat_emulator.base_url,
        "STORE": "memory://",
    }
    reset()
    yield cometchat_emulator
    reset()


def _get(client: Client, path: str, **headers: str) -> Any:
    return client.get(path, headers=headers)


def _refresh(client: Client, path: str, rejected: str, **headers: str) -> Any:
    body = json.dumps({"token": rejected})
    return client.post(path, body, content_type=JSON, headers=headers)


def _sid(credential: str) -> str:
    from django.conf import settings

    return credential_session_id(credential, settings.SECRET_KEY)


def _token_of(user: Any, credential: str) -> str | None:
    service = get_service()
    key = SessionKey(service.provider.name, f"user-{user.pk}", _sid(credential))
    stored = service.store.get(key)
    return None if stored is None else stored.value


# -- REST framework, TokenAuthentication ----------------------------------------------------------
def test_drf_token_client_gets_refreshes_and_loses_its_chat_token(
    cometchat: CometChatEmulator, user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    api_token = Token.objects.create(user=user)
    key = api_token.key  # Django clears a deleted row's primary key
    auth = {"Authorization": f"Token {key}"}
    api = Client()  # no cookie is ever set or sent: the credential is the header

    first = _get(api, "/api/chat/token", **auth)
    assert first.status_code == 200, first.content
    assert first["Cache-Control"] == "no-store"
    body = first.json()
    assert (body["provider"], body["uid"]) == ("cometchat", f"user-{user.pk}")
    assert not api.cookies
    assert _token_of(user, key) == body["token"]
    assert _get(api, "/api/chat/token", **auth).json()["token"] == body["token"]  # cached

    # The chat SDK says the token was refused: replaced, and the old one revoked.
    refreshed = _refresh(api, "/api/chat/token/refresh", body["token"], **auth)
    assert refreshed.status_code == 200
    second = refreshed.json()["token"]
    assert second != body["token"]
    assert not cometchat.is_token_alive(body["token"])
    assert cometchat.is_token_alive(second)
    assert _token_of(user, key) == second
    assert _get(api, "/api/chat/token", **auth).json()["token"] == second

    # A browser of the same user has its own chat session, untouched by the API client's.
    browser = Client()
    browser.force_login(user)
    in_browser = browser.get("/chat/token").json()["token"]
    assert in_browser not in (body["token"], second)

    # The API token is deleted (logout, revoked in the admin): its chat session ends with it.
    with django_capture_on_commit_callbacks(execute=True):
        api_token.delete()
    assert _token_of(user, key) is None
    assert not cometchat.is_token_alive(second)
    assert _get(api, "/api/chat/token", **auth).status_code == 401  # REST framework's own
    assert cometchat.is_token_alive(in_browser)
    assert browser.get("/chat/token").json()["token"] == in_browser

    # A new API token is a new chat session.
    new_token = Token.objects.create(user=user)
    again = _get(api, "/api/chat/token", Authorization=f"Token {new_token.key}")
    assert again.status_code == 200
    assert again.json()["token"] not in (body["token"], second, in_browser)


def test_drf_answers_are_the_cores(cometchat: CometChatEmulator, user: Any) -> None:
    api = Client()
    anonymous = _get(api, "/api/chat/token")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "ERROR_NOT_AUTHENTICATED"
    auth = {"Authorization": f"Token {Token.objects.create(user=user).key}"}
    form = api.post("/api/chat/token/refresh", {"token": "x"}, headers=auth)  # a form post
    assert form.status_code == 415
    assert form.json()["error"]["code"] == "ERROR_UNSUPPORTED_MEDIA_TYPE"
    cometchat.faults.status(503, retry_after=6, times=100)
    down = _get(api, "/api/chat/token", **auth)
    assert (down.status_code, down["Retry-After"]) == (503, "6")
    assert down.json()["error"]["code"] == "ERROR_PROVIDER_UNAVAILABLE"


def test_two_api_tokens_of_one_user_hold_two_chat_sessions(
    cometchat: CometChatEmulator, user: Any, django_user_model: Any
) -> None:
    # REST framework keeps one Token per user; knox-style multi-token setups key by token.
    other = django_user_model.objects.create_user("carol", password="x")
    first = Token.objects.create(user=user)
    second = Token.objects.create(user=other)
    api = Client()
    a = _get(api, "/api/chat/token", Authorization=f"Token {first.key}").json()
    b = _get(api, "/api/chat/token", Authorization=f"Token {second.key}").json()
    assert (a["uid"], b["uid"]) == (f"user-{user.pk}", f"user-{other.pk}")
    assert a["token"] != b["token"]


# -- REST framework, SimpleJWT --------------------------------------------------------------------
# SimpleJWT's own endpoints answer the app's access and refresh JWTs to the user logging in:
# JWTs in those bodies are credentials handed to their owner (secrets are still checked).
@pytest.mark.canary_allows_tokens("SimpleJWT's token endpoints answer JWTs to their owner")
def test_simplejwt_family_keeps_one_chat_session_and_ends_when_blacklisted(
    cometchat: CometChatEmulator, user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    api = Client()
    pair = api.post(
        "/api/jwt/", {"username": "alice", "password": "alice-password"}, content_type=JSON
    ).json()
    auth = {"Authorization": f"Bearer {pair['access']}"}
    first = _get(api, "/api/chat/token", **auth).json()["token"]
    # A new access token from the same refresh token: the same family, the same chat session.
    refreshed = api.post("/api/jwt/refresh/", {"refresh": pair["refresh"]}, content_type=JSON)
    access = refreshed.json()["access"]
    assert access != pair["access"]
    again = _get(api, "/api/chat/token", Authorization=f"Bearer {access}").json()["token"]
    assert again == first
    # Logging out blacklists the refresh token: the family's chat session ends.
    with django_capture_on_commit_callbacks(execute=True):
        out = api.post("/api/jwt/logout/", {"refresh": pair["refresh"]}, content_type=JSON)
    assert out.status_code == 200, out.content
    assert not cometchat.is_token_alive(first)


# -- django-ninja ---------------------------------------------------------------------------------
def test_ninja_router_binds_to_the_token_and_ends_with_it(
    cometchat: CometChatEmulator, user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    api_token = Token.objects.create(user=user)
    key = api_token.key
    auth = {"Authorization": f"Token {key}"}
    api = Client()
    assert _get(api, "/ninja/chat/token").status_code == 401  # ninja's auth refuses first
    first = _get(api, "/ninja/chat/token", **auth)
    assert first.status_code == 200, first.content
    token = first.json()["token"]
    # The REST framework view and the ninja router see one credential: one chat session.
    assert _get(api, "/api/chat/token", **auth).json()["token"] == token
    refreshed = _refresh(api, "/ninja/chat/token/refresh", token, **auth)
    assert refreshed.status_code == 200
    second = refreshed.json()["token"]
    assert second != token
    assert not cometchat.is_token_alive(token)
    with django_capture_on_commit_callbacks(execute=True):
        api_token.delete()
    assert not cometchat.is_token_alive(second)
    assert _token_of(user, key) is None


# -- allauth headless -----------------------------------------------------------------------------
def test_allauth_headless_session_token_client_loses_its_chat_token_at_logout(
    cometchat: CometChatEmulator, user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    api = Client()
    login = api.post(
        "/_allauth/app/v1/auth/login",
        {"username": "alice", "password": "alice-password"},
        content_type=JSON,
    )
    assert login.status_code == 200, login.content
    session_token = login.json()["meta"]["session_token"]
    auth = {"X-Session-Token": session_token}
    first = _get(api, "/api/chat/token", **auth)
    assert first.status_code == 200, first.content
    token = first.json()["token"]
    assert _token_of(user, session_token) == token
    refreshed = _refresh(api, "/api/chat/token/refresh", token, **auth).json()["token"]
    assert refreshed != token
    assert not cometchat.is_token_alive(token)
    with django_capture_on_commit_callbacks(execute=True):
        out = api.delete("/_allauth/app/v1/auth/session", headers=auth)
    assert out.status_code == 401  # allauth's answer to a logout: no longer authenticated
    assert not cometchat.is_token_alive(refreshed)
    assert _token_of(user, session_token) is None
    assert _get(api, "/api/chat/token", **auth).status_code == 401


def test_drf_session_clients_hand_the_core_the_user_not_the_lazy_object(
    cometchat: CometChatEmulator, user: Any, mapped_users: Callable[[], list[object]]
) -> None:
    from django.utils.functional import LazyObject

    seen = mapped_users()
    client = Client()
    client.force_login(user)  # REST framework's SessionAuthentication: request.user, lazy
    assert _get(client, "/api/chat/token").status_code == 200
    assert seen and not any(isinstance(u, LazyObject) for u in seen)
    assert all(type(u) is type(user) for u in seen)
