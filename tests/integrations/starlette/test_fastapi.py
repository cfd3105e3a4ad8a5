"""FastAPI: ``Depends(current_chat)``, the ``CurrentChat`` alias and ``chat_router``."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from chatauth.integrations.starlette import ChatAuthMiddleware, end_chat_session
from chatauth.integrations.starlette.fastapi import (
    ChatAuthHTTPException,
    CurrentChat,
    chat_router,
    chatauth_exception_handler,
    current_chat,
)
from fastapi import Depends, FastAPI, Request
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware

from chatauth import ChatAuth, ChatSession
from chatauth.providers.matrix import MatrixProvider
from tests.integrations.starlette.helpers import (
    Browser,
    CountingStore,
    SessionBackend,
    closed_port_url,
)


def fastapi_app(chat: ChatAuth, *, exact_errors: bool = False) -> FastAPI:
    app = FastAPI(
        middleware=[
            Middleware(SessionMiddleware, secret_key=secrets.token_urlsafe(16)),
            Middleware(AuthenticationMiddleware, backend=SessionBackend()),
            Middleware(ChatAuthMiddleware, chatauth=chat),
        ]
    )
    if exact_errors:
        app.add_exception_handler(ChatAuthHTTPException, chatauth_exception_handler)
    app.include_router(chat_router())

    @app.post("/login/{name}")
    async def login(name: str, request: Request) -> dict[str, str]:
        request.session["username"] = name
        return {"ok": name}

    @app.get("/me/chat")
    async def me(chat: CurrentChat) -> dict[str, str]:
        return {"uid": chat.uid, "fingerprint": chat.token.fingerprint}

    @app.get("/me/chat-depends")
    async def me_depends(chat: ChatSession = Depends(current_chat)) -> dict[str, str]:  # noqa: B008
        return {"uid": chat.uid}

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/logout")
    async def logout(request: Request) -> dict[str, int]:
        ended = await end_chat_session(request)
        request.session.clear()
        return {"ended": len(ended)}

    return app


async def test_current_chat_dependency(
    site_for: Callable[[Any], Browser], chat: ChatAuth, store: CountingStore
) -> None:
    browser = site_for(fastapi_app(chat))
    client = browser()
    await client.post("/login/alice")
    assert (await client.get("/plain")).status_code == 200
    assert store.calls == []  # lazy under FastAPI too

    me = (await client.get("/me/chat")).json()
    assert me["uid"] == "user-alice"
    assert (await client.get("/me/chat-depends")).json() == {"uid": "user-alice"}
    token = (await client.get("/chat/token")).json()
    assert me["fingerprint"] == chat.store.sessions("jwt", "user-alice")[0].fingerprint
    assert token["uid"] == "user-alice"

    assert (await client.post("/logout")).json() == {"ended": 1}
    assert chat.store.sessions("jwt", "user-alice") == []


async def test_anonymous_gets_401_through_fastapis_handler(
    site_for: Callable[[Any], Browser], chat: ChatAuth
) -> None:
    response = await site_for(fastapi_app(chat))().get("/me/chat")
    assert response.status_code == 401
    assert response.json() == {
        "detail": {"code": "ERROR_NOT_AUTHENTICATED", "message": "No user is logged in to the app."}
    }
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/me/chat", "/chat/token"])
async def test_with_the_handler_errors_match_the_token_endpoint(
    site_for: Callable[[Any], Browser], chat: ChatAuth, path: str
) -> None:
    response = await site_for(fastapi_app(chat, exact_errors=True))().get(path)
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "ERROR_NOT_AUTHENTICATED", "message": "No user is logged in to the app."}
    }


async def test_provider_down_gives_503_with_retry_after(
    site_for: Callable[[Any], Browser], store: CountingStore
) -> None:
    chat = ChatAuth(MatrixProvider(closed_port_url(), mode="admin", admin_token="adm"), store)
    client = site_for(fastapi_app(chat, exact_errors=True))()
    await client.post("/login/alice")
    for path in ("/me/chat", "/chat/token"):
        response = await client.get(path)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "ERROR_PROVIDER_UNAVAILABLE"
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["cache-control"] == "no-store"
    assert (await client.get("/plain")).status_code == 200
    await chat.aclose()


def test_the_token_route_is_in_the_openapi_schema(chat: ChatAuth) -> None:
    schema = fastapi_app(chat).openapi()
    assert "get" in schema["paths"]["/chat/token"]


async def test_chat_router_mounts_the_providers_endpoints(
    site_for: Callable[[Any], Browser], chat: ChatAuth
) -> None:
    client = site_for(fastapi_app(chat))()
    # The JWT provider declares none: any path under the prefix is the core's 404 answer.
    answer = await client.post("/chat/chatkitty/verify", json={"username": "x"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "ERROR_NOT_FOUND"
    assert answer.headers["cache-control"] == "no-store"
