"""Each sample app's chat page with the default JWT provider, and its answers to a lost app
session (401) and an unreachable chat provider (503), in headless Chromium."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import jwt
import pytest
from playwright.sync_api import expect

from tests.e2e.browser import flows
from tests.e2e.browser.apps import DEMO_USER, AppServers
from tests.e2e.browser.browsing import Browsing
from tests.servers.ports import refused_port

pytestmark = pytest.mark.browser

APPS = ["starlette", "django", "flask"]
JWT_SECRET = secrets.token_urlsafe(32)
JWT_SETTINGS = {"provider": "jwt", "jwt_secret": JWT_SECRET}


@pytest.mark.parametrize("app", APPS)
def test_jwt_provider_shows_uid_and_decoded_claims(
    app: str, app_servers: AppServers, browsing_factory: Any
) -> None:
    server = app_servers.get(app, JWT_SETTINGS)
    browsing: Browsing = browsing_factory(app, "desktop")
    page = browsing.new_page()

    flows.fill_login(page, server)
    session = flows.submit_login(page, server)
    flows.expect_ready(page, browsing)

    # What the page decoded is what the app signed (checked here with the key it never sees).
    claims = jwt.decode(session["token"], JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == f"user-{DEMO_USER}"
    expect(page.locator("#chat-uid")).to_have_text(f"user-{DEMO_USER}")
    expect(page.locator("#chat-provider")).to_have_text("jwt")
    expect(page.locator("#chat-expires")).to_contain_text(session["expires_at"])
    expect(page.locator("#chat-jwt")).to_be_visible()
    shown = json.loads(page.locator("#chat-claims").inner_text())
    assert shown["header"]["alg"] == "HS256"
    assert shown["claims"]["sub"] == claims["sub"]
    assert shown["claims"]["jti"] == claims["jti"]
    # Times are shown with their UTC reading next to the number.
    assert shown["claims"]["exp"].startswith(f"{claims['exp']} (")
    assert session["token"] not in page.content()
    assert JWT_SECRET not in page.content()
    browsing.screenshot(page, "jwt")
    browsing.assert_no_errors()


@pytest.mark.parametrize("app", APPS)
def test_lost_app_session_says_log_in_first(
    app: str, app_servers: AppServers, browsing_factory: Any
) -> None:
    server = app_servers.get(app, JWT_SETTINGS)
    browsing: Browsing = browsing_factory(app, "desktop")
    chat = browsing.new_page()
    flows.fill_login(chat, server)
    flows.submit_login(chat, server)
    flows.expect_ready(chat, browsing)

    # The same person logs out in another tab; the first tab still shows the chat page.
    other = browsing.new_page()
    other.goto(server.url(server.app.chat_path))
    flows.log_out(other)
    other.close()

    with chat.expect_response(flows.is_token_response(server)) as answer:
        chat.get_by_role("button", name="Fetch again").click()
    assert answer.value.status == 401
    assert flows.settled(chat) == "error"
    status = chat.locator("#chat-status")
    expect(status).to_contain_text("not logged in to the app (401 ERROR_NOT_AUTHENTICATED)")
    expect(status).to_contain_text("log in first")
    expect(status.get_by_role("link", name="Log in")).to_be_visible()
    browsing.screenshot(chat, "401")
    # Chromium reports the 401 answer itself as a console error; nothing else may appear.
    browsing.assert_no_errors("401")


@pytest.mark.parametrize("app", APPS)
def test_unreachable_provider_says_when_to_retry(
    app: str, app_servers: AppServers, browsing_factory: Any
) -> None:
    # A homeserver URL that refuses connections (held so for the whole test), and no retries
    # inside the app: a quick 503.
    with refused_port() as homeserver_port:
        settings = {
            "provider": "matrix",
            "matrix_homeserver_url": f"http://127.0.0.1:{homeserver_port}",
            "matrix_server_name": "localhost",
            "matrix_jwt_secret": secrets.token_urlsafe(32),
            "retry_attempts": "1",
        }
        server = app_servers.get(app, settings)
        browsing: Browsing = browsing_factory(app, "desktop")
        page = browsing.new_page()

        flows.fill_login(page, server)
        with page.expect_response(flows.is_token_response(server)) as answer:
            page.get_by_role("button", name="Log in").click()
        assert answer.value.status == 503
        retry_after = answer.value.headers["retry-after"]
        assert re.fullmatch(r"\d+", retry_after)
        assert flows.settled(page) == "error"
        status = page.locator("#chat-status")
        expect(status).to_contain_text("unavailable right now (503 ERROR_PROVIDER_UNAVAILABLE)")
        expect(status).to_contain_text(f"Try again in {retry_after} s.")
        browsing.screenshot(page, "503")
        browsing.assert_no_errors("503")
