"""ChatKitty against its emulator, with the verify URL served over real HTTP.

A token (signed ``authParams``) is alive if the emulator's "User Attempted Start Session" chat
function, which POSTs ``{username, authParams}`` to the app's verify URL, lets the session
start. The verify URL runs :func:`chatauth.providers.chatkitty.verify_auth_params`, which
consults the store of the :class:`~chatauth.ChatAuth` that issued the params: the suite hands
each service it builds to ``Harness.attach``, and the verify app asks them. The check itself is
the real one, over HTTP, against the real store.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chatauth import ChatAuth
from chatauth.providers.chatkitty import ChatKittyProvider, verify_auth_params
from chatauth.testing.chatkitty import (
    DEFAULT_API_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    ChatKittyEmulator,
)
from chatauth.testing.server import serve
from chatauth.tokens import ChatToken
from tests.providers.conformance import Harness

MAKES_HTTP_CALLS = True


def offline(url: str) -> ChatKittyProvider:
    """The provider wired to ``url`` with the emulator's credentials, for the properties that
    answer its requests themselves (tests/providers/test_hostile_answers.py)."""
    return ChatKittyProvider(
        DEFAULT_API_KEY,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        base_url=url,
        auth_url=url + "/oauth/token",
    )


def make_provider(
    emulator: ChatKittyEmulator, secret: str = DEFAULT_CLIENT_SECRET
) -> ChatKittyProvider:
    assert emulator.url is not None
    return ChatKittyProvider(
        DEFAULT_API_KEY,
        DEFAULT_CLIENT_ID,
        secret,
        base_url=emulator.base_url,
        auth_url=emulator.url + "/oauth/token",
    )


def _decide(services: list[ChatAuth], payload: Any) -> tuple[int, Any, dict[str, str]]:
    answer: tuple[int, Any, dict[str, str]] = (500, {"error": {"code": "NO_SERVICE"}}, {})
    for chat in reversed(services):
        answer = verify_auth_params(chat, payload)
        if answer[0] == 200:
            break
    return answer


def verify_app(services: list[ChatAuth]) -> Starlette:
    """The app's verify URL (``POST /chatkitty/verify``) over the recorded services."""

    async def verify(request: Request) -> JSONResponse:
        payload = await request.json()
        # The store read is blocking: keep it off the server's event loop.
        status, body, headers = await run_in_threadpool(_decide, services, payload)
        return JSONResponse(body, status_code=status, headers=headers)

    return Starlette(routes=[Route("/chatkitty/verify", verify, methods=["POST"])])


@pytest.fixture(name="harness_chatkitty")
def harness_chatkitty(chatkitty_emulator: ChatKittyEmulator) -> Iterator[Harness]:
    provider = make_provider(chatkitty_emulator)
    services: list[ChatAuth] = []

    with serve(verify_app(services)) as app:
        verify_url = app.url + "/chatkitty/verify"

        def is_alive(token: ChatToken) -> bool:
            return chatkitty_emulator.start_session(token.uid, {"token": token.value}, verify_url)

        def chat_user(uid: str) -> dict[str, Any] | None:
            user = chatkitty_emulator.users.get(uid)
            return None if user is None else {"name": user["displayName"], "active": True}

        yield Harness(
            name="chatkitty",
            provider=provider,
            make_bad_provider=lambda: make_provider(chatkitty_emulator, "wrong-client-secret"),
            is_alive=is_alive,
            faults=chatkitty_emulator.faults,
            issue_calls=lambda: chatkitty_emulator.calls.count_of(path="/v1/users"),
            attach=services.append,
            chat_user=chat_user,
        )
