"""Fixtures: a counting store and provider, the tiny app, and clients ("browsers") talking to
an app through httpx's ASGITransport or through a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from chatauth import ChatAuth
from tests.integrations.starlette.helpers import (
    Browser,
    CountingJWTProvider,
    CountingStore,
    make_app,
    serve_app,
)


@pytest.fixture
def jwt_secret() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    store = CountingStore(tmp_path / "chatauth.sqlite3")
    store.calls.clear()
    yield store
    store.close()


@pytest.fixture
def chat(store: CountingStore, jwt_secret: str) -> ChatAuth:
    chat = ChatAuth(CountingJWTProvider(jwt_secret), store)
    chat.ended: list[tuple[str, int]] = []  # type: ignore[attr-defined]
    chat.on_session_ended.append(
        lambda identity, tokens: chat.ended.append((identity.uid, len(tokens)))  # type: ignore[attr-defined]
    )
    return chat


@pytest.fixture
def app(chat: ChatAuth) -> Starlette:
    return make_app(chat)


# -- clients: one per "browser", over ASGITransport or a real uvicorn ---------------------------
@pytest.fixture(params=["asgi", "uvicorn"])
async def site_for(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[Any], Browser]]:
    """``site_for(app)`` returns ``browser()``: a new client with its own cookie jar, talking
    to ``app`` in-process (ASGITransport) or over loopback HTTP (uvicorn on a free port)."""
    kind: str = request.param
    clients: list[httpx.AsyncClient] = []
    with contextlib.ExitStack() as stack:

        def make(app: Any) -> Browser:
            transport: httpx.AsyncBaseTransport | None = None
            if kind == "uvicorn":
                base = stack.enter_context(serve_app(app))
            else:
                base, transport = "http://testserver", httpx.ASGITransport(app=app)

            def browser() -> httpx.AsyncClient:
                client = httpx.AsyncClient(base_url=base, transport=transport, timeout=30.0)
                clients.append(client)
                return client

            return browser

        try:
            yield make
        finally:
            for client in clients:
                await client.aclose()


@pytest.fixture
def browser(site_for: Callable[[Any], Browser], app: Starlette) -> Browser:
    return site_for(app)
