"""CometChat (REST API v3) against its emulator; a token is alive if the client SDK's login
(``PUT /v3.0/me`` with ``appid`` and ``authToken``) accepts it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from chatauth.providers.cometchat import CometChatProvider
from chatauth.testing.cometchat import DEFAULT_API_KEY, DEFAULT_APP_ID, CometChatEmulator
from chatauth.tokens import ChatToken
from tests.providers.conformance import Harness
from tests.servers.deadlines import REQUEST_DEADLINE

MAKES_HTTP_CALLS = True


def offline(url: str) -> CometChatProvider:
    """The provider wired to ``url`` with the emulator's credentials, for the properties that
    answer its requests themselves (tests/providers/test_hostile_answers.py)."""
    return CometChatProvider(DEFAULT_APP_ID, DEFAULT_API_KEY, base_url=url)


def cometchat_harness(
    name: str, cls: type[CometChatProvider], emulator: CometChatEmulator
) -> Harness:
    """A harness for ``cls`` (Chat or Calls variant) wired to a served emulator."""

    def provider(api_key: str) -> CometChatProvider:
        return cls(emulator.app_id, api_key, region=emulator.region, base_url=emulator.base_url)

    def is_alive(token: ChatToken) -> bool:
        response = httpx.put(
            emulator.client_url + "/me",
            headers={"appid": emulator.app_id, "authToken": token.value},
            timeout=REQUEST_DEADLINE,
        )
        return response.status_code == 200

    def issue_calls() -> int:
        # Token creation: POST /users (withAuthToken) or POST /users/{uid}/auth_tokens.
        return sum(
            1
            for call in emulator.calls
            if call.method == "POST"
            and (call.path == "/v3/users" or call.path.endswith("/auth_tokens"))
        )

    return Harness(
        name=name,
        provider=provider(DEFAULT_API_KEY),
        make_bad_provider=lambda: provider("wrong-rest-api-key"),
        is_alive=is_alive,
        faults=emulator.faults,
        issue_calls=issue_calls,
        chat_user=lambda uid: chat_user(emulator, uid),
    )


def chat_user(emulator: CometChatEmulator, uid: str) -> dict[str, Any] | None:
    """The user as the emulator keeps it; a deactivated one is kept, inactive."""
    user = emulator.users.get(uid)
    active = user is not None
    user = user or emulator.deactivated.get(uid)
    if user is None:
        return None
    return {"name": user.get("name"), "avatar": user.get("avatar"), "active": active}


@pytest.fixture(name="harness_cometchat")
def harness_cometchat(cometchat_emulator: CometChatEmulator) -> Harness:
    return cometchat_harness("cometchat", CometChatProvider, cometchat_emulator)
