"""When the chat session id is made: at the response that first leaves a non-empty app session
(the login answer), so that a browser's concurrent first chat requests share one token."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from chatauth.integrations.starlette import ChatAuthMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware

from chatauth import ChatAuth
from chatauth.binding import read_slot
from tests.integrations.starlette.helpers import (
    ROUTES,
    Browser,
    CountingStore,
    SessionBackend,
    header_user_app,
)

pytestmark = pytest.mark.usefixtures("store")

KEY = "_chatauth_sid"


def session_of(client: httpx.AsyncClient) -> dict[str, Any] | None:
    """The app session the browser holds: Starlette's cookie is base64 JSON, signed."""
    raw = client.cookies.get("session")
    if raw is None:
        return None
    data: dict[str, Any] = json.loads(base64.b64decode(raw.strip('"').split(".")[0]))
    return data


def chat_id(client: httpx.AsyncClient) -> dict[str, Any] | None:
    """The chat session id and UID the app session holds, read as the core reads them."""
    slot = read_slot(session_of(client), KEY)
    return None if slot is None else {"sid": slot[0], "uid": slot[1]}


async def logged_in(browser: Browser, name: str = "alice") -> httpx.AsyncClient:
    client = browser()
    assert (await client.post(f"/login/{name}")).status_code == 200
    return client


async def burst(client: httpx.AsyncClient, n: int = 20) -> set[str]:
    """``n`` simultaneous first chat requests from one browser session; the tokens seen."""
    answers = await asyncio.gather(*(client.get("/chat/token") for _ in range(n)))
    assert [a.status_code for a in answers] == [200] * n, answers[0].text
    return {a.json()["token"] for a in answers}


def stored(chat: ChatAuth, uid: str = "user-alice") -> list[str]:
    return [t.value for t in chat.store.sessions(chat.provider.name, uid)]


def issued(chat: ChatAuth) -> int:
    count: int = chat.provider.issued  # type: ignore[attr-defined]
    return count


# -- the race this fixes ------------------------------------------------------------------------
async def test_concurrent_first_requests_after_login_share_one_token(
    browser: Browser, chat: ChatAuth
) -> None:
    # An SPA firing its chat calls at once right after login: every request carries the cookie
    # the login answer set, which already holds the chat session id, so all of them ask for
    # the same chat session and the provider is called once; no token is left orphaned.
    client = await logged_in(browser)
    tokens = await burst(client)
    assert len(tokens) == 1
    assert issued(chat) == 1
    assert stored(chat) == list(tokens)
    # Whichever Set-Cookie the jar kept names that chat session, and logout ends it.
    assert {(await client.get("/chat/token")).json()["token"]} == tokens
    assert (await client.post("/logout")).json() == {"ended": 1}
    assert stored(chat) == []


async def test_the_login_answer_holds_an_unbound_id_that_first_use_binds(
    browser: Browser, store: CountingStore
) -> None:
    client = await logged_in(browser)
    minted = chat_id(client)
    assert minted is not None and minted["uid"] is None
    # 128 random bits, URL-safe base64: unguessable and short (the cookie carries it).
    assert isinstance(minted["sid"], str) and len(minted["sid"]) == 22
    assert store.calls == []  # minting is a session write, nothing else

    await client.get("/chat/token")
    assert chat_id(client) == {"sid": minted["sid"], "uid": "user-alice"}


async def test_concurrent_first_requests_after_a_user_switch_share_one_token(
    browser: Browser, chat: ChatAuth
) -> None:
    client = await logged_in(browser, "alice")
    alice = await burst(client, 1)
    alice_sid = chat_id(client)
    await client.post("/switch/bob")  # no logout in between
    tokens = await burst(client)
    assert len(tokens) == 1
    assert issued(chat) == 2
    assert stored(chat, "user-bob") == list(tokens)
    assert stored(chat, "user-alice") == []
    assert chat.ended == [("user-alice", 1)]  # type: ignore[attr-defined]
    bob_sid = chat_id(client)
    assert bob_sid is not None and alice_sid is not None
    assert bob_sid["uid"] == "user-bob" and bob_sid["sid"] != alice_sid["sid"]
    assert tokens != alice


async def test_a_login_that_clears_the_session_first_gets_a_fresh_id(
    browser: Browser, chat: ChatAuth
) -> None:
    client = await logged_in(browser)
    first = await burst(client, 1)
    old = chat_id(client)

    assert (await client.post("/relogin/alice")).status_code == 200
    assert stored(chat) == []  # the cleared session's chat session ended before the answer
    fresh = chat_id(client)
    assert fresh is not None and old is not None
    assert fresh["uid"] is None and fresh["sid"] != old["sid"]

    tokens = await burst(client)
    assert len(tokens) == 1 and tokens != first
    assert issued(chat) == 2


async def test_a_session_older_than_the_middleware_gets_its_id_on_the_next_response(
    site_for: Callable[[Any], Browser], chat: ChatAuth, store: CountingStore
) -> None:
    secret = secrets.token_urlsafe(16)
    sessions = [
        Middleware(SessionMiddleware, secret_key=secret),
        Middleware(AuthenticationMiddleware, backend=SessionBackend()),
    ]
    before = site_for(Starlette(routes=ROUTES, middleware=sessions))
    after = site_for(
        Starlette(
            routes=ROUTES, middleware=[*sessions, Middleware(ChatAuthMiddleware, chatauth=chat)]
        )
    )
    old = await logged_in(before)
    assert session_of(old) == {"username": "alice"}

    client = after()
    cookie = old.cookies["session"]
    response = await client.get("/plain", headers={"cookie": f"session={cookie}"})
    assert response.json()["user"] == "alice"
    assert store.calls == []
    assert (chat_id(client) or {}).get("uid", "missing") is None

    tokens = await burst(client)
    assert len(tokens) == 1
    assert issued(chat) == 1


# -- sessions that are not a login ------------------------------------------------------------
async def test_anonymous_session_data_gets_an_inert_id_that_leaves_with_the_data(
    browser: Browser, chat: ChatAuth, store: CountingStore
) -> None:
    client = browser()
    await client.post("/flash")
    minted = chat_id(client)
    assert minted is not None and minted["uid"] is None

    # Nobody logged in: no token under it, no store work.
    response = await client.get("/chat/token")
    assert response.status_code == 401
    assert store.calls == [] and issued(chat) == 0

    # The id alone does not keep the session cookie alive.
    assert (await client.post("/take-flash")).text == "hello"
    assert session_of(client) is None

    # Data, then a login on the same session: the id minted for the data serves the user.
    await client.post("/flash")
    minted = chat_id(client)
    assert minted is not None
    await client.post("/login/alice")
    assert len(await burst(client)) == 1
    assert chat_id(client) == {"sid": minted["sid"], "uid": "user-alice"}


async def test_logout_by_clearing_mints_no_id_on_the_way_out(
    browser: Browser, chat: ChatAuth
) -> None:
    for path in ("/logout", "/clear", "/logout-clear-first"):
        client = await logged_in(browser)
        await burst(client, 3)
        response = await client.post(path)
        assert response.status_code == 200
        assert session_of(client) is None, path  # the cookie was deleted, not refilled
    assert stored(chat) == []
    assert [n for _, n in chat.ended] == [1, 1, 1]  # type: ignore[attr-defined]


async def test_logout_helper_with_leftover_data_mints_no_id_on_the_way_out(
    browser: Browser, chat: ChatAuth
) -> None:
    client = await logged_in(browser)
    await burst(client, 3)
    assert (await client.post("/logout-with-flash")).json() == {"ended": 1}
    assert session_of(client) == {"flash": "bye"}
    assert stored(chat) == []
    # The next answer treats the leftover data like any anonymous data: an inert id.
    await client.get("/plain")
    assert (chat_id(client) or {}).get("uid", "missing") is None
    assert (await client.get("/chat/token")).status_code == 401


async def test_a_cleared_then_refilled_session_ends_the_chat_and_gets_an_inert_id(
    browser: Browser, chat: ChatAuth
) -> None:
    client = await logged_in(browser)
    await burst(client, 1)
    old = chat_id(client)
    await client.post("/clear-with-flash")
    assert stored(chat) == []
    assert chat.ended == [("user-alice", 1)]  # type: ignore[attr-defined]
    fresh = chat_id(client)
    assert fresh is not None and old is not None
    assert fresh["uid"] is None and fresh["sid"] != old["sid"]


# -- where no id is made ---------------------------------------------------------------------
async def test_without_session_middleware_no_cookie_is_set(
    site_for: Callable[[Any], Browser], chat: ChatAuth
) -> None:
    app = header_user_app(chat)
    client = site_for(app)()
    answers = await asyncio.gather(
        *(client.get("/chat/token", headers={"x-test-user": "api-alice"}) for _ in range(10))
    )
    assert all("set-cookie" not in a.headers for a in answers)
    assert len({a.json()["token"] for a in answers}) == 1
    assert issued(chat) == 1
