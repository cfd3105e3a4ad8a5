"""request.chat / request.achat and the token endpoint through Django's test clients
(sync: ``Client``; async: ``AsyncClient``), with the JWT provider and the ORM store."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from asgiref.sync import sync_to_async
from chatauth.integrations.django.models import ChatToken
from django.core.exceptions import SynchronousOnlyOperation
from django.test import AsyncClient, Client

from chatauth.testing import canary

SECRET = canary.secret("django-tests-jwt-secret")

pytestmark = pytest.mark.django_db(transaction=True)


def claims(token: str) -> dict[str, object]:
    return jwt.decode(token, SECRET, algorithms=["HS256"])


def test_anonymous_token_request_is_401_json_not_a_redirect(client: Client) -> None:
    response = client.get("/chat/token")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "ERROR_NOT_AUTHENTICATED"
    assert "no-store" in response["Cache-Control"]
    assert ChatToken.objects.count() == 0


def test_token_endpoint_issues_once_per_app_session_and_reuses(client: Client, user) -> None:
    client.force_login(user)
    first = client.get("/chat/token")
    assert first.status_code == 200
    body = first.json()
    assert body["provider"] == "jwt"
    assert body["uid"] == f"user-{user.pk}"
    assert claims(body["token"])["sub"] == f"user-{user.pk}"
    assert body["expires_at"].endswith("Z")
    # The one header set of every adapter (chatauth.responses.NO_STORE).
    assert first["Cache-Control"] == "no-store"
    assert first["Vary"] == "Cookie"
    assert client.get("/chat/token").json()["token"] == body["token"]
    assert ChatToken.objects.count() == 1
    row = ChatToken.objects.get()
    # The row keeps neither the session key nor, outside the payload, the token.
    assert client.session.session_key not in (row.key, row.user_key)
    assert row.fingerprint != body["token"][:12]


def test_two_browsers_of_one_user_hold_two_tokens(user) -> None:
    one, two = Client(), Client()
    one.force_login(user)
    two.force_login(user)
    token_one = one.get("/chat/token").json()["token"]
    token_two = two.get("/chat/token").json()["token"]
    assert token_one != token_two
    assert claims(token_one)["sub"] == claims(token_two)["sub"]
    assert ChatToken.objects.count() == 2


def test_token_endpoint_only_serves_get(client: Client, user) -> None:
    client.force_login(user)
    assert client.post("/chat/token").status_code == 405


def test_request_that_never_reads_chat_does_nothing(client: Client, user) -> None:
    client.force_login(user)
    assert client.get("/untouched/").json() == {"ok": True}
    assert ChatToken.objects.count() == 0


def test_sync_view_reads_request_chat(client: Client, user) -> None:
    client.force_login(user)
    body = client.get("/sync/").json()
    assert body["uid"] == f"user-{user.pk}"
    assert client.get("/chat/token").json()["token"] == body["token"]


def test_anonymous_reading_request_chat_gets_401_from_the_middleware(client: Client) -> None:
    response = client.get("/sync/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "ERROR_NOT_AUTHENTICATED"


def test_chat_required_redirects_anonymous_users_to_login(client: Client, user) -> None:
    for url in ("/decorated/", "/mixin/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    client.force_login(user)
    assert client.get("/decorated/").json()["uid"] == f"user-{user.pk}"
    assert client.get("/mixin/").json()["uid"] == f"user-{user.pk}"


def test_logout_ends_the_chat_session_and_a_new_login_gets_a_new_token(
    client: Client, user
) -> None:
    client.force_login(user)
    before = client.get("/chat/token").json()["token"]
    assert ChatToken.objects.count() == 1
    assert client.post("/accounts/logout/").status_code == 302
    assert ChatToken.objects.count() == 0
    assert client.get("/chat/token").status_code == 401
    client.force_login(user)
    assert client.get("/chat/token").json()["token"] != before


def test_flushed_session_is_not_served_the_old_token(client: Client, user) -> None:
    client.force_login(user)
    before = client.get("/chat/token").json()["token"]
    session = client.session
    session.flush()  # what Django does on a session-hash mismatch, without logout()
    client.force_login(user)
    assert client.get("/chat/token").json()["token"] != before


def test_expired_session_is_not_served_the_old_token(client: Client, user) -> None:
    from django.contrib.sessions.models import Session

    client.force_login(user)
    before = client.get("/chat/token").json()["token"]
    Session.objects.all().delete()  # expired and cleared (manage.py clearsessions)
    assert client.get("/chat/token").status_code == 401
    client.force_login(user)
    assert client.get("/chat/token").json()["token"] != before


# -- the async path ---------------------------------------------------------------------
async def alogin(client: AsyncClient, user) -> None:
    # AsyncClient.aforce_login exists from Django 5.0; force_login touches the ORM.
    await sync_to_async(client.force_login)(user)


async def test_async_view_awaits_request_achat(async_client: AsyncClient, user) -> None:
    await alogin(async_client, user)
    body = (await async_client.get("/async/")).json()
    assert body["uid"] == f"user-{user.pk}"
    token = (await async_client.get("/chat/token")).json()["token"]
    assert token == body["token"]
    assert (await async_client.get("/decorated-async/")).json()["uid"] == f"user-{user.pk}"


async def test_an_async_view_reads_a_kept_chat_session_without_a_binding(
    async_client: AsyncClient, user
) -> None:
    await alogin(async_client, user)
    token = (await async_client.get("/async/")).json()["token"]
    assert (await async_client.get("/async/")).json()["token"] == token  # read back: kept
    response = await async_client.get("/async/")
    assert response.json()["token"] == token
    assert not hasattr(response.asgi_request, "_chatauth")
    assert response.asgi_request._chatauth_kept[0].token.value == token


async def test_a_loaded_session_is_not_loaded_again_in_a_worker_thread(
    async_client: AsyncClient, user, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatauth.integrations.django import middleware

    hops: list[str] = []
    real = middleware.sync_to_async

    def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", repr(func)))
        return real(func, *args, **kwargs)

    monkeypatch.setattr(middleware, "sync_to_async", counting)
    await alogin(async_client, user)
    # Twice in one view: the session is loaded by the first read (by request.auser(), which
    # chatauth awaits first, or by chatauth's own hop), not again by the second.
    body = (await async_client.get("/async-twice/")).json()
    assert body == {"uids": [f"user-{user.pk}"] * 2}
    assert hops.count("keys") <= 1


async def test_async_anonymous_gets_401_and_redirect(async_client: AsyncClient) -> None:
    response = await async_client.get("/async/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "ERROR_NOT_AUTHENTICATED"
    response = await async_client.get("/decorated-async/")
    assert response.status_code == 302


async def test_async_view_forcing_the_lazy_object_is_refused(
    async_client: AsyncClient, user
) -> None:
    await alogin(async_client, user)
    with pytest.raises(SynchronousOnlyOperation):
        await async_client.get("/async-lazy/")


def test_the_old_service_accessor_still_works_and_warns() -> None:
    import chatauth.integrations.django as adapter
    from chatauth.integrations.django import conf

    with pytest.warns(DeprecationWarning, match="get_service"):
        old = conf.get_chatauth
    assert old is conf.get_service
    with pytest.warns(DeprecationWarning, match="get_service"):
        assert adapter.get_chatauth() is adapter.get_service()


def test_an_async_login_of_another_user_ends_the_previous_chat_session(
    client: Client, user, other_user
) -> None:
    client.force_login(user)
    alice = client.get("/chat/token").json()
    assert ChatToken.objects.count() == 1
    assert client.get(f"/async-login/{other_user.username}/").status_code == 200
    bob = client.get("/chat/token").json()
    assert bob["uid"] == f"user-{other_user.pk}" != alice["uid"]
    # The login flushed alice's session: her chat session ended with it.
    assert ChatToken.objects.count() == 1
