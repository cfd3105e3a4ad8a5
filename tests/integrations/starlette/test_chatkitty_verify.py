"""ChatKitty's session check through the Starlette routes: the emulator's chat function POSTs
to the app's verify URL over real HTTP, before and after the app logout."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.applications import Starlette

from chatauth import ChatAuth
from chatauth.providers.chatkitty import ChatKittyProvider
from chatauth.stores.memory import MemoryStore
from chatauth.testing.chatkitty import (
    DEFAULT_API_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    ChatKittyEmulator,
)
from tests.integrations.starlette.helpers import make_app, serve_app

#: The verify URL takes JSON only (415 otherwise).
JSON = {"Content-Type": "application/json"}


def app_closing(chat: ChatAuth) -> Starlette:
    """The tiny app, closing the service's async client on the server's own loop."""
    app = make_app(chat)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        await chat.aclose()

    app.router.lifespan_context = lifespan
    return app


def test_verify_url_allows_the_live_session_and_refuses_it_after_logout(
    chatkitty_emulator: ChatKittyEmulator,
) -> None:
    assert chatkitty_emulator.url is not None
    provider = ChatKittyProvider(
        DEFAULT_API_KEY,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        base_url=chatkitty_emulator.base_url,
        auth_url=chatkitty_emulator.url + "/oauth/token",
    )
    chat = ChatAuth(provider, MemoryStore())
    with serve_app(app_closing(chat)) as url, httpx.Client(base_url=url) as browser:
        verify_url = url + "/chat/chatkitty/verify"
        browser.post("/login/alice").raise_for_status()
        body = browser.get("/chat/token").json()
        params = {"token": body["token"]}
        assert body["client"]["api_key"] == DEFAULT_API_KEY
        assert chatkitty_emulator.start_session(body["uid"], params, verify_url)
        # Another username with these params is refused: they name their user.
        assert not chatkitty_emulator.start_session("user-mallory", params, verify_url)
        browser.post("/logout").raise_for_status()
        assert not chatkitty_emulator.start_session(body["uid"], params, verify_url)
        bad = httpx.post(verify_url, content=b"not json", headers=JSON)
        assert bad.status_code == 400


def test_verify_url_is_404_for_other_providers(chat: ChatAuth) -> None:
    with serve_app(app_closing(chat)) as url:
        answer = httpx.post(url + "/chat/chatkitty/verify", json={"username": "x"})
    assert answer.status_code == 404
