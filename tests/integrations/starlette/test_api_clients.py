"""FastAPI API clients: the chat session bound to the bearer token, with any ``current_user``
dependency; over a real uvicorn, against CometChat's emulator (so an ended session is a token
dead at the provider).

No ``from __future__ import annotations`` here: FastAPI resolves the dependencies' annotations,
which name objects local to the fixture.
"""

import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx
import pytest
from chatauth.integrations.starlette import ChatAuthMiddleware
from chatauth.integrations.starlette.api import ApiChat
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware import Middleware

import chatauth
from chatauth.session import ChatSession
from chatauth.testing.cometchat import DEFAULT_API_KEY, DEFAULT_APP_ID, CometChatEmulator

from .helpers import serve_app

SECRET = "fastapi-app-secret-key-for-tests"


class User:
    def __init__(self, name: str) -> None:
        self.id = name


@pytest.fixture
def app_url(cometchat_emulator: CometChatEmulator) -> Iterator[tuple[str, dict[str, str]]]:
    """An app whose API tokens live in a dict (token -> username), as a fastapi-users database
    strategy keeps them in a table."""
    tokens: dict[str, str] = {}
    bearer = HTTPBearer(auto_error=False)

    async def current_user(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> User | None:
        name = tokens.get(credentials.credentials) if credentials else None
        return User(name) if name else None

    async def required_user(user: Annotated[User | None, Depends(current_user)]) -> User:
        if user is None:
            raise HTTPException(401)
        return user

    service = chatauth.from_settings(
        {
            "PROVIDER": "cometchat",
            "COMETCHAT_APP_ID": DEFAULT_APP_ID,
            "COMETCHAT_API_KEY": DEFAULT_API_KEY,
            "COMETCHAT_BASE_URL": cometchat_emulator.base_url,
            "UID_MAPPER": "id",
            "UID_PREFIX": "",
            "STORE": "memory://",
        }
    )
    chat = ApiChat(current_user, secret=SECRET)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        await service.aclose()  # on the server's loop, which owns the async connections

    app = FastAPI(middleware=[Middleware(ChatAuthMiddleware, chatauth=service)], lifespan=lifespan)
    app.include_router(chat.router("/api/chat"))

    @app.post("/api/login/{name}")
    async def login(name: str) -> dict[str, str]:
        token = secrets.token_urlsafe(16)
        tokens[token] = name
        return {"token": token}

    @app.post("/api/logout")
    async def logout(request: Request, user: Annotated[User, Depends(required_user)]) -> dict:
        await chat.end(request, user)
        credentials = await bearer(request)
        assert credentials is not None
        del tokens[credentials.credentials]
        return {"ok": True}

    @app.get("/api/me/chat")
    async def me(session: Annotated[ChatSession, Depends(chat.current)]) -> dict[str, str]:
        return {"uid": session.uid}

    with serve_app(app) as url:
        yield url, tokens


def test_fastapi_client_gets_refreshes_and_loses_its_chat_token(
    app_url: tuple[str, dict[str, str]], cometchat_emulator: CometChatEmulator
) -> None:
    url, _ = app_url
    with httpx.Client(base_url=url) as api:
        assert api.get("/api/chat/token").status_code == 401
        assert api.get("/api/me/chat").json() == {
            "detail": {
                "code": "ERROR_NOT_AUTHENTICATED",
                "message": "No user is logged in to the app.",
            }
        }
        phone = {"Authorization": f"Bearer {api.post('/api/login/alice').json()['token']}"}
        laptop = {"Authorization": f"Bearer {api.post('/api/login/alice').json()['token']}"}
        first = api.get("/api/chat/token", headers=phone)
        assert first.status_code == 200
        assert first.headers["cache-control"] == "no-store"
        token = first.json()["token"]
        assert first.json()["uid"] == "alice"
        assert api.get("/api/chat/token", headers=phone).json()["token"] == token
        assert api.get("/api/me/chat", headers=phone).json() == {"uid": "alice"}
        # Another API token of the same user: its own chat session.
        other = api.get("/api/chat/token", headers=laptop).json()["token"]
        assert other != token

        body = json.dumps({"token": token})
        json_type = {"Content-Type": "application/json"}
        refreshed = api.post(
            "/api/chat/token/refresh", content=body, headers={**phone, **json_type}
        )
        assert refreshed.status_code == 200
        second = refreshed.json()["token"]
        assert second != token
        assert not cometchat_emulator.is_token_alive(token)
        as_form = api.post("/api/chat/token/refresh", content=body, headers=phone)
        assert as_form.status_code == 415

        assert api.post("/api/logout", headers=phone).json() == {"ok": True}
        assert not cometchat_emulator.is_token_alive(second)
        assert api.get("/api/chat/token", headers=phone).status_code == 401
        assert cometchat_emulator.is_token_alive(other)  # the laptop's session lives on
        assert api.get("/api/chat/token", headers=laptop).json()["token"] == other


def test_api_chat_needs_a_secret() -> None:
    with pytest.raises(chatauth.ConfigurationError):
        ApiChat(lambda: None, secret="")
