"""@sendbird/chat, the official Sendbird client SDK from npm, in headless Chromium, pointed at
the Sendbird emulator through ``customApiHost`` / ``customWebSocketHost``, with the session
token the Starlette sample hands out and ``chatauth.js``'s ``sendbirdSessionHandler``.

``sb.connect`` opens the emulator's WebSocket (chatauth/testing/sendbird_ws.py). The user's
session tokens are then revoked and Sendbird tells the connection so (``EXPR``, 400302): the
SDK calls its ``SessionHandler.onSessionTokenRequired``, chatauth.js has the app replace the
token, and the SDK refreshes its session over the same connection with the new one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from chatauth.testing.sendbird import DEFAULT_API_TOKEN, DEFAULT_APP_ID, SendbirdEmulator
from tests.e2e.browser.apps import DEMO_USER, AppServers
from tests.e2e.browser.browsing import Browsing
from tests.e2e.browser.sdk_page import open_sdk_page, run_scenario, sdk_version
from tests.servers.deadlines import REQUEST_DEADLINE

pytestmark = [pytest.mark.browser]

UID = f"user-{DEMO_USER}"


@pytest.fixture
def sendbird() -> Iterator[SendbirdEmulator]:
    emulator = SendbirdEmulator()
    with emulator.serve():
        yield emulator


def test_sendbird_connects_and_refreshes_its_session_through_chatauth_js(
    sendbird: SendbirdEmulator, sdk_bundles: Path, app_servers: AppServers, browsing_factory: Any
) -> None:
    settings = {
        "provider": "sendbird",
        "sendbird_application_id": DEFAULT_APP_ID,
        "sendbird_api_token": DEFAULT_API_TOKEN,
        "sendbird_base_url": sendbird.base_url,
    }
    server = app_servers.get("starlette", settings)
    browsing: Browsing = browsing_factory("starlette", "desktop")
    page, token_url = open_sdk_page(browsing, server, sdk_bundles)

    result = run_scenario(
        page, "sendbird", "connect", {"tokenUrl": token_url, "host": sendbird.url}
    )

    first = result["session"]["token"]
    assert result["connectionState"] == "OPEN"
    [connection] = sendbird.connections.connections
    assert connection.user_id == UID
    assert connection.tokens == [(first, True)]
    assert connection.open

    # The user's session tokens are revoked (an operator, or the app on another device), and
    # Sendbird tells the open connection its token no longer holds.
    revoked = httpx.delete(
        f"{sendbird.base_url}/users/{quote(UID, safe='')}/token",
        headers={"Api-Token": DEFAULT_API_TOKEN},
        timeout=REQUEST_DEADLINE,
    )
    assert revoked.status_code == 200, revoked.text
    assert not sendbird.is_session_token_alive(UID, first)
    assert sendbird.connections.expire(UID) == 1
    page.wait_for_function(
        "() => globalThis.sendbirdTest.refreshed >= 1", timeout=REQUEST_DEADLINE * 1000
    )

    status = run_scenario(page, "sendbird", "status", {})
    [second] = status["provided"]
    assert second != first
    # The same connection: the SDK logged in again over it with the replacement.
    assert sendbird.connections.connections == [connection]
    assert connection.tokens == [(first, True), (second, True)]
    assert sendbird.is_session_token_alive(UID, second)
    assert status["errors"] == []
    assert status["connectionState"] == "OPEN"
    # The app stored the replacement: its token endpoint answers it now.
    answer = page.evaluate(
        "async (url) => (await (await fetch(url, {credentials: 'same-origin'})).json()).token",
        token_url,
    )
    assert answer == second
    run_scenario(page, "sendbird", "disconnect", {})
    browsing.assert_no_errors()
    print(f"@sendbird/chat {sdk_version(sdk_bundles, 'sendbird')} against the Sendbird emulator")
