"""matrix-js-sdk, the official Matrix client SDK from npm, in headless Chromium against the
real Synapse, with the token each sample app hands out.

A person logs in to the app through its form; a page of the app's origin loads the SDK (the
npm package, bundled for the browser) and, with the token from the app's endpoint, asks the
homeserver who it is, joins a room by alias, sends a message and reads it back by event id and
from the room's timeline. What the page read is checked against the homeserver itself.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.browser import flows
from tests.e2e.browser.apps import DEMO_USER, AppServers
from tests.e2e.browser.browsing import Browsing
from tests.e2e.browser.sdk_page import open_sdk_page, run_scenario, sdk_version
from tests.servers.deadlines import REQUEST_DEADLINE
from tests.servers.synapse import SynapseServer

pytestmark = [pytest.mark.browser, pytest.mark.synapse]

APPS = ["starlette", "django", "flask"]
#: The room the SDK joins (made by the homeserver's admin; another alias than chat.js's room,
#: so the two suites' messages never mix).
ROOM = "chatauth-sdk"


def matrix_settings(synapse: SynapseServer) -> dict[str, str]:
    """The Matrix provider in JWT-login mode: one device (and token) per app session."""
    return {
        "provider": "matrix",
        "matrix_homeserver_url": synapse.base_url,
        "matrix_server_name": synapse.server_name,
        "matrix_jwt_secret": synapse.jwt_secret,
    }


@pytest.fixture(scope="module")
def sdk_room(synapse: SynapseServer) -> str:
    """A public room with the alias ``#chatauth-sdk``, made by the homeserver's admin."""
    response = httpx.post(
        f"{synapse.base_url}/_matrix/client/v3/createRoom",
        headers={"Authorization": f"Bearer {synapse.admin_token}"},
        json={"preset": "public_chat", "room_alias_name": ROOM, "name": "chatauth SDK tests"},
        timeout=REQUEST_DEADLINE,
    )
    assert response.status_code == 200, response.text
    room_id: str = response.json()["room_id"]
    return room_id


@pytest.mark.parametrize("app", APPS)
def test_matrix_js_sdk_logs_in_sends_and_reads(
    app: str,
    synapse: SynapseServer,
    sdk_room: str,
    sdk_bundles: Path,
    app_servers: AppServers,
    browsing_factory: Any,
) -> None:
    server = app_servers.get(app, matrix_settings(synapse))
    browsing: Browsing = browsing_factory(app, "desktop")
    page, token_url = open_sdk_page(browsing, server, sdk_bundles)
    message = f"Hello from matrix-js-sdk through the {app} sample"

    result = run_scenario(
        page,
        "matrix",
        "run",
        {"tokenUrl": token_url, "roomAlias": f"#{ROOM}:{synapse.server_name}", "message": message},
    )

    user_id = f"@user-{DEMO_USER}:{synapse.server_name}"
    session = result["session"]
    assert session["provider"] == "matrix"
    assert result["whoami"]["user_id"] == user_id
    assert result["whoami"]["device_id"] == session["client"]["device_id"]
    assert result["roomId"] == sdk_room
    assert result["read"] == {"sender": user_id, "body": message}
    assert {"event_id": result["event_id"], "sender": user_id, "body": message} in result[
        "timeline"
    ]
    # The homeserver, asked directly with the same token, holds the event the SDK sent.
    stored = httpx.get(
        f"{synapse.base_url}/_matrix/client/v3/rooms/{quote(sdk_room, safe='')}/event/"
        f"{quote(result['event_id'], safe='')}",
        headers={"Authorization": f"Bearer {session['token']}"},
        timeout=REQUEST_DEADLINE,
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["content"]["body"] == message
    # The token never reached the page's markup.
    assert session["token"] not in page.content()
    browsing.assert_no_errors()
    print(f"matrix-js-sdk {sdk_version(sdk_bundles, 'matrix')} through the {app} sample")


#: Seconds the admin-mode tokens of the soft-logout test live: long enough for the first
#: exchange on a loaded machine, short enough that waiting for the expiry costs little.
SHORT_TTL = 3


def short_lived_settings(synapse: SynapseServer) -> dict[str, str]:
    """The Matrix provider in admin (login-as) mode, whose tokens carry an expiry: once it has
    passed, Synapse answers 401 M_UNKNOWN_TOKEN with ``soft_logout: true``."""
    return {
        "provider": "matrix",
        "matrix_homeserver_url": synapse.base_url,
        "matrix_server_name": synapse.server_name,
        "matrix_admin_token": synapse.admin_token,
        "token_ttl": str(SHORT_TTL),
        "refresh_margin": "1",
    }


def whoami(synapse: SynapseServer, token: str) -> httpx.Response:
    return httpx.get(
        f"{synapse.base_url}/_matrix/client/v3/account/whoami",
        headers={"Authorization": f"Bearer {token}"},
        timeout=REQUEST_DEADLINE,
    )


def wait_for_soft_logout(synapse: SynapseServer, token: str) -> dict[str, Any]:
    """Ask the homeserver until it soft-logs ``token`` out (its expiry passed); its answer."""
    deadline = time.monotonic() + SHORT_TTL + REQUEST_DEADLINE
    while time.monotonic() < deadline:
        answer = whoami(synapse, token)
        if answer.status_code == 401:
            body: dict[str, Any] = answer.json()
            return body
        assert answer.status_code == 200, answer.text
        time.sleep(0.1)
    pytest.fail(f"the token was still valid {SHORT_TTL + REQUEST_DEADLINE} s after its issue")


@pytest.mark.parametrize("app", APPS)
def test_matrix_js_sdk_goes_on_after_a_soft_logout_through_chatauth_js(
    app: str,
    synapse: SynapseServer,
    sdk_room: str,
    sdk_bundles: Path,
    app_servers: AppServers,
    browsing_factory: Any,
) -> None:
    """Log in with the app's token, send and read; the token expires (soft logout); the next
    SDK calls go through: chatauth.js's matrixFetch has the app replace the token and repeats
    each refused request with the new one."""
    server = app_servers.get(app, short_lived_settings(synapse))
    browsing: Browsing = browsing_factory(app, "desktop")
    page, token_url = open_sdk_page(browsing, server, sdk_bundles)
    alias = f"#{ROOM}:{synapse.server_name}"
    user_id = f"@user-{DEMO_USER}:{synapse.server_name}"

    before = run_scenario(
        page,
        "matrix",
        "runWithRefresh",
        {"tokenUrl": token_url, "roomAlias": alias, "message": f"Before, via {app}"},
    )
    first = before["session"]["token"]
    assert before["whoami"]["user_id"] == user_id
    assert before["read"] == {"sender": user_id, "body": f"Before, via {app}"}

    expired = wait_for_soft_logout(synapse, first)
    assert expired["errcode"] == "M_UNKNOWN_TOKEN"
    assert expired["soft_logout"] is True

    after = run_scenario(page, "matrix", "goOn", {"message": f"After, via {app}"})
    assert after["whoami"]["user_id"] == user_id
    assert after["read"] == {"sender": user_id, "body": f"After, via {app}"}
    tokens = after["tokens"]
    assert tokens[0] == first
    assert len(tokens) >= 2
    assert len(set(tokens)) == len(tokens)
    assert after["clientToken"] == tokens[-1]
    # The SDK never saw the soft logout: no Session.logged_out.
    assert after["loggedOut"] == []
    # Both messages are in the room, by the same user, as the homeserver tells its admin.
    for exchange in (before, after):
        stored = httpx.get(
            f"{synapse.base_url}/_matrix/client/v3/rooms/{quote(sdk_room, safe='')}/event/"
            f"{quote(exchange['event_id'], safe='')}",
            headers={"Authorization": f"Bearer {synapse.admin_token}"},
            timeout=REQUEST_DEADLINE,
        )
        assert stored.status_code == 200, stored.text
        assert stored.json()["sender"] == user_id

    # The user logs out of the app in another tab: the app revokes the token at the homeserver
    # and refuses to replace it, so the SDK's next call fails as it would without chatauth.js
    # (the homeserver's 401 reaches the SDK, which emits Session.logged_out).
    other = browsing.new_page()
    other.goto(server.url(server.app.chat_path))
    flows.log_out(other)
    ended = run_scenario(page, "matrix", "goOnAfterAppLogout", {})
    assert ended["failed"] == "M_UNKNOWN_TOKEN"
    assert ended["loggedOut"] == ["M_UNKNOWN_TOKEN"]
    assert ended["tokens"] == tokens
    # What the browser logged: the homeserver's 401s (the soft-logged-out request, more than one
    # if a replacement also expired in use on a slow machine, and the one after the app's
    # logout), the app's 401 to the refresh, and the SDK's own complaint that it cannot refresh
    # by itself (it has no OAuth 2.0 session), as it says without chatauth.js.
    errors = browsing.errors
    refused = [e for e in errors if "/token/refresh" in e]
    assert len(refused) == 1 and "status of 401" in refused[0], errors
    assert len([e for e in errors if "Unable to refresh token" in e]) == 1, errors
    homeserver = [e for e in errors if "/_matrix/client/" in e]
    assert len(homeserver) >= 2, errors
    assert all("status of 401" in e for e in homeserver), errors
    assert len(homeserver) + 2 == len(errors), errors
