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
from tests.e2e.browser.apps import DEMO_USER, SAMPLE_APPS, AppServer, AppServers
from tests.e2e.browser.browsing import Browsing
from tests.servers.deadlines import REQUEST_DEADLINE
from tests.servers.synapse import SynapseServer

pytestmark = [pytest.mark.browser, pytest.mark.synapse]

APPS = ["starlette", "django", "flask"]
VIEWPORTS = ["phone", "desktop"]
#: The localpart of the room alias chat.js uses (#chatauth-demo:<server name>).
DEMO_ROOM = "chatauth-demo"


def matrix_settings(synapse: SynapseServer) -> dict[str, str]:
    """The Matrix provider in JWT-login mode: one device (and token) per app session."""
    return {
        "provider": "matrix",
        "matrix_homeserver_url": synapse.base_url,
        "matrix_server_name": synapse.server_name,
        "matrix_jwt_secret": synapse.jwt_secret,
    }


@pytest.fixture(scope="module")
def demo_room(synapse: SynapseServer) -> str:
    """The demo room chat.js joins, made beforehand by the homeserver's admin (as an operator
    would), so each page joins it without first looking for a room that does not exist yet.
    The first-visitor case has its own test, on a homeserver of its own."""
    response = httpx.post(
        f"{synapse.base_url}/_matrix/client/v3/createRoom",
        headers={"Authorization": f"Bearer {synapse.admin_token}"},
        json={"preset": "public_chat", "room_alias_name": DEMO_ROOM, "name": "chatauth demo"},
        timeout=REQUEST_DEADLINE,
    )
    if response.status_code == 400 and response.json().get("errcode") == "M_ROOM_IN_USE":
        alias = quote(f"#{DEMO_ROOM}:{synapse.server_name}", safe="")
        response = httpx.get(
            f"{synapse.base_url}/_matrix/client/v3/directory/room/{alias}", timeout=REQUEST_DEADLINE
        )
    assert response.status_code == 200, response.text
    room_id: str = response.json()["room_id"]
    return room_id


def client_api(synapse: SynapseServer, path: str, token: str) -> httpx.Response:
    return httpx.get(
        f"{synapse.base_url}/_matrix/client/v3{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=REQUEST_DEADLINE,
    )


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("app", APPS)
def test_login_chat_logout_with_matrix(
    app: str,
    viewport: str,
    synapse: SynapseServer,
    demo_room: str,
    app_servers: AppServers,
    browsing_factory: Any,
) -> None:
    server = app_servers.get(app, matrix_settings(synapse))
    login_chat_logout(server, browsing_factory(app, viewport), synapse, demo_room, shots=True)


def test_admin_login_as_mode(
    synapse: SynapseServer, demo_room: str, app_servers: AppServers, browsing_factory: Any
) -> None:
    """The other way to get a Matrix token (an admin's login-as, with an expiry and no device):
    the same flow, and logging out kills that token too."""
    settings = {
        "provider": "matrix",
        "matrix_homeserver_url": synapse.base_url,
        "matrix_server_name": synapse.server_name,
        "matrix_admin_token": synapse.admin_token,
    }
    server = app_servers.get("django", settings)
    session = login_chat_logout(
        server, browsing_factory("django", "desktop"), synapse, demo_room, shots=False
    )
    assert session["expires_at"] is not None
    assert synapse.admin_token not in str(session)


def login_chat_logout(
    server: AppServer, browsing: Browsing, synapse: SynapseServer, demo_room: str, *, shots: bool
) -> dict[str, Any]:
    """Log in, check the chat page's round trip through the homeserver, log out, replay the
    token; returns the token endpoint's answer."""
    page = browsing.new_page()
    user_id = f"@user-{DEMO_USER}:{synapse.server_name}"

    def screenshot(step: str) -> None:
        if shots:
            browsing.screenshot(page, step)

    # 1. The login form, filled in.
    flows.fill_login(page, server)
    screenshot("1-login")

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
    expect(page.locator("#chat-steps")).to_contain_text(f"({demo_room}): joined")
    echo = page.locator("#chat-echo")
    expect(echo).to_be_visible()
    expect(echo).to_contain_text(f"Hello from user-{DEMO_USER}")
    expect(echo.locator(".chatauth-sender")).to_have_text(user_id)
    if session["expires_at"]:
        expect(page.locator("#chat-expires")).to_contain_text(session["expires_at"])
    screenshot("2-chat")

    # The echo is the homeserver's, not the page's: the event exists in the room with that body.
    room_id = echo.get_attribute("data-room-id")
    event_id = echo.get_attribute("data-event-id")
    assert room_id == demo_room and event_id
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
    screenshot("3-logged-out")

    replay = client_api(synapse, "/account/whoami", token)
    assert replay.status_code == 401, replay.text
    assert replay.json()["errcode"] == "M_UNKNOWN_TOKEN"

    browsing.assert_no_errors()
    return session


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
        timeout=REQUEST_DEADLINE,
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] in ("*", origin)
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]


def test_second_user_reads_the_first_users_message(
    synapse: SynapseServer, demo_room: str, app_servers: AppServers, browsing_factory: Any
) -> None:
    """Two people, two browsers: alice's message reaches bob through the homeserver."""
    server = app_servers.get("starlette", matrix_settings(synapse))
    alice: Browsing = browsing_factory("starlette", "desktop")
    alice_page = alice.new_page()
    flows.fill_login(alice_page, server)
    flows.submit_login(alice_page, server)
    flows.expect_ready(alice_page, alice)
    alice_event = alice_page.locator("#chat-echo").get_attribute("data-event-id")

    bob: Browsing = browsing_factory("starlette", "desktop")
    bob_page = bob.new_page()
    flows.fill_login(bob_page, server, "bob", "builder")
    flows.submit_login(bob_page, server)
    flows.expect_ready(bob_page, bob)
    expect(bob_page.locator("#chat-steps")).to_contain_text(f"({demo_room}): joined")
    expect(bob_page.locator(f'#chat-messages li[data-event-id="{alice_event}"]')).to_contain_text(
        f"Hello from user-{DEMO_USER}"
    )
    expect(bob_page.locator("#chat-echo .chatauth-sender")).to_have_text(
        f"@user-bob:{synapse.server_name}"
    )

    # Bob writes in the form; alice's page, asked again, reads it from the homeserver.
    bob_page.locator("#chat-input").fill("Hi alice, bob here")
    bob_page.get_by_role("button", name="Send").click()
    expect(bob_page.locator("#chat-echo q")).to_have_text("Hi alice, bob here")
    alice_page.get_by_role("button", name="Fetch again").click()
    flows.expect_ready(alice_page, alice)
    expect(alice_page.locator("#chat-messages")).to_contain_text("Hi alice, bob here")
    bob.screenshot(bob_page, "second-user")
    alice.assert_no_errors()
    bob.assert_no_errors()


def test_first_visitor_creates_the_demo_room(
    synapse_factory: Any, tmp_path: Any, browsing_factory: Any
) -> None:
    """On a homeserver nobody has used, chat.js finds no room by the alias and creates it."""
    fresh: SynapseServer = synapse_factory()
    settings = matrix_settings(fresh)
    workdir = tmp_path / "app"
    workdir.mkdir()
    with AppServer(SAMPLE_APPS["starlette"], settings, workdir) as server:
        browsing: Browsing = browsing_factory("starlette", "desktop")
        page = browsing.new_page()
        flows.fill_login(page, server)
        flows.submit_login(page, server)
        flows.expect_ready(page, browsing)
        steps = page.locator("#chat-steps")
        expect(steps).to_contain_text(f"Room #{DEMO_ROOM}:{fresh.server_name} (")
        expect(steps).to_contain_text("): created")
        room_id = page.locator("#chat-echo").get_attribute("data-room-id")
        alias = quote(f"#{DEMO_ROOM}:{fresh.server_name}", safe="")
        found = httpx.get(
            f"{fresh.base_url}/_matrix/client/v3/directory/room/{alias}", timeout=REQUEST_DEADLINE
        )
        assert found.json()["room_id"] == room_id
        # The join by alias that found nothing is the one failed request, and it is expected.
        browsing.assert_no_errors("404")
