"""Each sample app as a person uses it, in headless Chromium, against a real Synapse.

Log in through the form -> the chat page's script takes the token from the app's endpoint and,
from the browser, asks the homeserver who it is, joins the demo room, sends a message and reads
it back -> log out -> the token, replayed, is dead at the homeserver (``M_UNKNOWN_TOKEN``).
At a phone and a desktop viewport, with a screenshot of every step and no console errors.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.browser import flows
from tests.e2e.browser.apps import DEMO_USER, AppServers
from tests.e2e.browser.browsing import Browsing
from tests.servers.synapse import SynapseServer

pytestmark = [pytest.mark.browser, pytest.mark.synapse]

APPS = ["starlette", "django", "flask"]
VIEWPORTS = ["phone", "desktop"]


def matrix_settings(synapse: SynapseServer) -> dict[str, str]:
    """The Matrix provider in JWT-login mode: one device (and token) per app session."""
    return {
        "provider": "matrix",
        "matrix_homeserver_url": synapse.base_url,
        "matrix_server_name": synapse.server_name,
        "matrix_jwt_secret": synapse.jwt_secret,
    }


def client_api(synapse: SynapseServer, path: str, token: str) -> httpx.Response:
    return httpx.get(
        f"{synapse.base_url}/_matrix/client/v3{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("app", APPS)
def test_login_chat_logout_with_matrix(
    app: str,
    viewport: str,
    synapse: SynapseServer,
    app_servers: AppServers,
    browsing_factory: Any,
) -> None:
    server = app_servers.get(app, matrix_settings(synapse))
    browsing: Browsing = browsing_factory(app, viewport)
    page = browsing.new_page()
    user_id = f"@user-{DEMO_USER}:{synapse.server_name}"

    # 1. The login form, filled in.
    flows.fill_login(page, server)
    browsing.screenshot(page, "1-login")

    # 2. Submit: the chat page fetches the token and uses it against the homeserver.
    session = flows.submit_login(page, server)
    flows.expect_ready(page, browsing)
    token = session["token"]
    assert session["provider"] == "matrix"
    assert session["uid"] == f"user-{DEMO_USER}"
    assert session["client"]["homeserver_url"] == synapse.base_url
    assert session["client"]["user_id"] == user_id
    expect(page.locator("#chat-uid")).to_have_text(f"user-{DEMO_USER}")
    expect(page.locator("#chat-provider")).to_have_text("matrix")
    expect(page.locator("#chat-steps")).to_contain_text(f"whoami: {user_id}")
    echo = page.locator("#chat-echo")
    expect(echo).to_be_visible()
    expect(echo).to_contain_text(f"Hello from user-{DEMO_USER}")
    expect(echo.locator(".chatauth-sender")).to_have_text(user_id)
    browsing.screenshot(page, "2-chat")

    # The echo is the homeserver's, not the page's: the event exists in the room with that body.
    room_id = echo.get_attribute("data-room-id")
    event_id = echo.get_attribute("data-event-id")
    assert room_id and event_id
    stored = client_api(
        synapse, f"/rooms/{quote(room_id, safe='')}/event/{quote(event_id, safe='')}", token
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["sender"] == user_id
    assert stored.json()["content"]["body"] == echo.locator("q").inner_text()

    # The token is held in memory only: nowhere in the page's markup or text.
    assert token not in page.content()
    expect(page.locator("#chat-token")).to_contain_text(f"{len(token)} characters")

    # 3. Log out: the app revokes the chat token at the homeserver.
    assert client_api(synapse, "/account/whoami", token).status_code == 200
    flows.log_out(page)
    browsing.screenshot(page, "3-logged-out")

    replay = client_api(synapse, "/account/whoami", token)
    assert replay.status_code == 401, replay.text
    assert replay.json()["errcode"] == "M_UNKNOWN_TOKEN"

    browsing.assert_no_errors()


def test_synapse_allows_browser_calls_from_another_origin(synapse: SynapseServer) -> None:
    """chat.js calls the homeserver cross-origin with an Authorization header: the preflight
    must allow that, and the answer must carry a matching Access-Control-Allow-Origin."""
    origin = "http://127.0.0.1:9"
    preflight = httpx.options(
        f"{synapse.base_url}/_matrix/client/v3/account/whoami",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
        timeout=10,
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] in ("*", origin)
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]
