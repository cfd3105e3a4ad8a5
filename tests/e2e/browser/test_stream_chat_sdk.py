"""stream-chat, the official Stream Chat client SDK from npm, in headless Chromium, pointed at
the Stream emulator through its documented ``baseURL`` option, with the tokens the Starlette
sample hands out.

``connectUser`` opens the emulator's WebSocket ``/connect`` (chatauth/testing/stream_ws.py) with
the app's token; the emulator checks it as Stream does and answers the health check the SDK
waits for. When the connection drops, the SDK reconnects with its token.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from chatauth.testing.stream import DEFAULT_API_KEY, DEFAULT_API_SECRET, StreamEmulator
from tests.e2e.browser.apps import DEMO_USER, AppServers
from tests.e2e.browser.browsing import Browsing
from tests.e2e.browser.sdk_page import open_sdk_page, run_scenario, sdk_version
from tests.servers.deadlines import REQUEST_DEADLINE

pytestmark = [pytest.mark.browser]

UID = f"user-{DEMO_USER}"


@pytest.fixture
def stream() -> Iterator[StreamEmulator]:
    emulator = StreamEmulator()
    with emulator.serve():
        yield emulator


def stream_settings(emulator: StreamEmulator) -> dict[str, str]:
    return {
        "provider": "stream",
        "stream_api_key": DEFAULT_API_KEY,
        "stream_api_secret": DEFAULT_API_SECRET,
        "stream_base_url": emulator.url,
    }


def wait_in_page(page: Any, condition: str) -> None:
    """Wait until ``condition`` (a JS expression over ``streamTest``) holds in the page."""
    page.wait_for_function(
        f"() => {{ const s = globalThis.streamTest; return {condition}; }}",
        timeout=REQUEST_DEADLINE * 1000,
    )


def test_stream_chat_connects_with_the_apps_token_and_reconnects(
    stream: StreamEmulator, sdk_bundles: Path, app_servers: AppServers, browsing_factory: Any
) -> None:
    server = app_servers.get("starlette", stream_settings(stream))
    browsing: Browsing = browsing_factory("starlette", "desktop")
    page, token_url = open_sdk_page(browsing, server, sdk_bundles)

    result = run_scenario(
        page,
        "stream",
        "connect",
        {"tokenUrl": token_url, "baseURL": stream.url, "provider": "endpoint"},
    )

    token = result["session"]["token"]
    assert result["session"]["provider"] == "stream"
    assert result["me"] == {"id": UID, "role": "user"}
    assert result["userId"] == UID
    [attempt] = stream.connections.attempts
    assert attempt.token == token
    assert attempt.error_code is None and attempt.open
    assert result["connectionId"] == attempt.connection_id
    # Connecting made the user at the emulator, as connectUser does at Stream.
    assert UID in stream.users

    # The connection drops (an edge restart, a network change): the SDK reconnects by itself,
    # with the token it holds, and says so with connection.recovered.
    assert stream.connections.drop(UID) == 1
    wait_in_page(page, "s.recovered >= 1")
    status = run_scenario(page, "stream", "status", {})
    assert status["healthy"] is True
    assert status["online"][-1] is True
    accepted = [a for a in stream.connections.attempts if a.error_code is None]
    assert len(accepted) == 2
    assert accepted[1].token == token and accepted[1].open
    assert status["connectionId"] == accepted[1].connection_id
    run_scenario(page, "stream", "disconnect", {})
    browsing.assert_no_errors()
    print(f"stream-chat {sdk_version(sdk_bundles, 'stream')} against the Stream emulator")


def revoke_user_tokens(emulator: StreamEmulator, user_id: str) -> float:
    """Revoke every token of ``user_id`` issued until now, through the emulator's server API
    (as an operator, or the app on another of the user's devices, would); returns the cut-off."""
    cutoff = time.time()
    stamp = datetime.fromtimestamp(cutoff, timezone.utc).isoformat().replace("+00:00", "Z")
    response = httpx.patch(
        f"{emulator.url}/users",
        params={"api_key": DEFAULT_API_KEY},
        headers={"Stream-Auth-Type": "jwt", "Authorization": emulator.server_token()},
        json={"users": [{"id": user_id, "set": {"revoke_tokens_issued_before": stamp}}]},
        timeout=REQUEST_DEADLINE,
    )
    assert response.status_code == 200, response.text
    return cutoff


def test_stream_chat_recovers_a_revoked_token_through_chatauth_js(
    stream: StreamEmulator, sdk_bundles: Path, app_servers: AppServers, browsing_factory: Any
) -> None:
    """The token the SDK holds is revoked; the connection drops; the SDK reconnects, Stream
    refuses the token (40), the SDK calls its tokenProvider (chatauth.js), which has the app
    replace that token (POST /token/refresh), and the SDK connects with the new one."""
    server = app_servers.get("starlette", stream_settings(stream))
    browsing: Browsing = browsing_factory("starlette", "desktop")
    page, token_url = open_sdk_page(browsing, server, sdk_bundles)
    result = run_scenario(
        page,
        "stream",
        "connect",
        {"tokenUrl": token_url, "baseURL": stream.url, "provider": "chatauth"},
    )
    first = result["session"]["token"]
    assert [a.token for a in stream.connections.attempts] == [first]

    # Stream's cut-off and iat are whole seconds, and the app's revocation of ``first`` sets the
    # cut-off past ``first``'s iat: a token minted in that same second would be born revoked.
    # Here the refresh comes in a later second, as it does when a token dies in use.
    iat = jwt.decode(first, options={"verify_signature": False})["iat"]
    while time.time() < iat + 1:
        time.sleep(0.05)
    revoke_user_tokens(stream, UID)
    assert stream.connect_user(first) == (False, 40)
    assert stream.connections.drop(UID) == 1
    wait_in_page(page, "s.recovered >= 1")

    status = run_scenario(page, "stream", "status", {})
    attempts = stream.connections.attempts
    # Connected with the first token; refused it after the revocation (40); connected with a
    # second one, the one chatauth.js handed the SDK.
    assert [(a.token == first, a.error_code) for a in attempts] == [
        (True, None),
        (True, 40),
        (False, None),
    ]
    second = attempts[-1].token
    assert status["provided"] == [first, second]
    assert attempts[-1].open
    assert status["healthy"] is True
    assert status["connectionId"] == attempts[-1].connection_id
    # The app stored the replacement: its token endpoint now answers the second token.
    answer = page.evaluate(
        "async (url) => (await (await fetch(url, {credentials: 'same-origin'})).json()).token",
        token_url,
    )
    assert answer == second
    assert stream.connect_user(second) == (True, None)
    run_scenario(page, "stream", "disconnect", {})
    # The refused connection is the SDK's own business: it logs no console error for it.
    browsing.assert_no_errors()
