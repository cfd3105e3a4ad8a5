"""@cometchat/chat-sdk-javascript, the official CometChat client SDK from npm, in headless
Chromium, pointed at the CometChat emulator through its app settings' host override
(``overrideClientHost``), logging in with the auth token the Starlette sample hands out.

What runs and what does not: ``CometChat.init`` and ``CometChat.login(authToken)``, the SDK's own
code, whose login is the client API call ``PUT <client host>/me`` the emulator answers (it checks
the app id and the auth token as CometChat does). The SDK builds ``https://<client host>``
URLs only, so the browser's HTTPS requests to the emulator's host are forwarded to it over plain
HTTP by the test (Playwright's request routing): the requests and answers are the SDK's and the
emulator's, only TLS is left out. The real-time socket is off (``autoEstablishSocketConnection
(false)``): CometChat's WebSocket protocol is not emulated.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Route
from starlette.middleware.cors import CORSMiddleware

from chatauth.testing.cometchat import DEFAULT_API_KEY, DEFAULT_APP_ID, CometChatEmulator
from chatauth.testing.server import serve
from tests.e2e.browser.apps import DEMO_USER, AppServers
from tests.e2e.browser.browsing import Browsing
from tests.e2e.browser.sdk_page import open_sdk_page, run_scenario, sdk_version
from tests.servers.deadlines import REQUEST_DEADLINE

pytestmark = [pytest.mark.browser]

UID = f"user-{DEMO_USER}"


@pytest.fixture
def cometchat() -> Iterator[CometChatEmulator]:
    emulator = CometChatEmulator()
    # The SDK calls the emulator from the app's page, another origin: the browser asks first.
    app = CORSMiddleware(
        emulator.app, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"]
    )
    with serve(app) as served:
        emulator.served_url = served.url
        try:
            yield emulator
        finally:
            emulator.served_url = None


def cometchat_settings(emulator: CometChatEmulator) -> dict[str, str]:
    return {
        "provider": "cometchat",
        "cometchat_app_id": DEFAULT_APP_ID,
        "cometchat_api_key": DEFAULT_API_KEY,
        "cometchat_region": "us",
        "cometchat_base_url": emulator.base_url,
    }


def bridge_https(context: BrowserContext, url: str) -> None:
    """Answer the browser's requests to ``https://<url's host>`` by forwarding them to ``url``
    over HTTP (the SDK speaks HTTPS only; the emulator serves plain HTTP)."""

    def forward(route: Route) -> None:
        response = route.fetch(url=route.request.url.replace("https://", "http://", 1))
        route.fulfill(response=response)

    context.route(url.replace("http://", "https://", 1) + "/**", forward)


def open_page(
    emulator: CometChatEmulator, bundles: Path, app_servers: AppServers, browsing: Browsing
) -> tuple[Any, str, str]:
    server = app_servers.get("starlette", cometchat_settings(emulator))
    bridge_https(browsing.context, emulator.url)
    page, token_url = open_sdk_page(browsing, server, bundles)
    # What the SDK prefixes with https:// (the emulator's client API root, /v3.0).
    host = emulator.client_url.removeprefix("http://")
    return page, token_url, host


@contextmanager
def operator_call() -> Iterator[None]:
    """Drop httpx's request lines for a call the test makes as CometChat's operator: the line
    names the token in the URL, and it is the operator's tool's log, not chatauth's (chatauth
    scrubs its own with a filter on the same logger: ``chatauth.http.REDACT``)."""
    httpx_logger, drop = logging.getLogger("httpx"), logging.Filter("operator.only")
    httpx_logger.addFilter(drop)  # a name no httpx record has: every record is dropped
    try:
        yield
    finally:
        httpx_logger.removeFilter(drop)


def test_cometchat_sdk_logs_in_with_the_apps_token(
    cometchat: CometChatEmulator, sdk_bundles: Path, app_servers: AppServers, browsing_factory: Any
) -> None:
    browsing: Browsing = browsing_factory("starlette", "desktop")
    page, token_url, host = open_page(cometchat, sdk_bundles, app_servers, browsing)

    result = run_scenario(
        page, "cometchat", "login", {"tokenUrl": token_url, "host": host, "provider": "sdk"}
    )

    token = result["session"]["token"]
    assert result["uid"] == UID
    assert result["name"] == "Alice"
    assert cometchat.logins == [token]
    browsing.assert_no_errors()
    print(f"@cometchat/chat-sdk-javascript {sdk_version(sdk_bundles, 'cometchat')}")


def test_cometchat_sdk_logs_in_again_through_chatauth_js_after_a_revocation(
    cometchat: CometChatEmulator, sdk_bundles: Path, app_servers: AppServers, browsing_factory: Any
) -> None:
    """The app's token is deleted at CometChat (an operator, another device's logout) while the
    app still holds it: chatauth.js's cometchatLogin logs in with it, CometChat refuses
    (AUTH_ERR_AUTH_TOKEN_NOT_FOUND), and it logs in again with the token the app replaced."""
    browsing: Browsing = browsing_factory("starlette", "desktop")
    page, token_url, host = open_page(cometchat, sdk_bundles, app_servers, browsing)
    held = page.evaluate(
        "async (url) => (await (await fetch(url, {credentials: 'same-origin'})).json()).token",
        token_url,
    )
    with operator_call():
        deleted = httpx.delete(
            f"{cometchat.base_url}/users/{UID}/auth_tokens/{held}",
            headers={"apikey": DEFAULT_API_KEY, "appid": DEFAULT_APP_ID},
            timeout=REQUEST_DEADLINE,
        )
    assert deleted.status_code == 200, deleted.text
    assert not cometchat.is_token_alive(held)

    result = run_scenario(
        page, "cometchat", "login", {"tokenUrl": token_url, "host": host, "provider": "chatauth"}
    )

    assert result["session"]["token"] == held
    assert result["uid"] == UID
    # The refused login, then the login with the replacement (the only one that succeeded).
    [replacement] = cometchat.logins
    assert replacement != held
    assert cometchat.is_token_alive(replacement)
    assert [c.path for c in cometchat.calls if c.path.endswith("/me")] == [
        "/v3.0/me",
        "/v3.0/me",
    ]
    # The app stored the replacement: its token endpoint answers it now.
    answer = page.evaluate(
        "async (url) => (await (await fetch(url, {credentials: 'same-origin'})).json()).token",
        token_url,
    )
    assert answer == replacement
    # The refused login is the one failed request the browser saw.
    browsing.assert_no_errors("401")
