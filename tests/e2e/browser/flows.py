"""What a person does in a sample app, as Playwright steps: log in, open the chat, log out."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, Response, expect

from tests.e2e.browser.apps import DEMO_PASSWORD, DEMO_USER, AppServer
from tests.e2e.browser.browsing import Browsing
from tests.servers.deadlines import REQUEST_DEADLINE

#: The settled states chat.js writes on ``#chat``.
SETTLED = '#chat[data-state="ready"], #chat[data-state="error"]'


def fill_login(
    page: Page, server: AppServer, username: str = DEMO_USER, password: str = DEMO_PASSWORD
) -> None:
    """Open the login page and type the credentials (not submitted yet)."""
    page.goto(server.url(server.app.login_path))
    page.locator('input[name="username"]').fill(username)
    page.locator('input[name="password"]').fill(password)


def is_token_response(server: AppServer) -> Any:
    def check(response: Response) -> bool:
        return (
            response.url.startswith(server.base_url)
            and response.url.split("?")[0].endswith("/token")
            and response.request.method == "GET"
        )

    return check


def submit_login(page: Page, server: AppServer) -> dict[str, Any]:
    """Submit the login form; the app redirects to the chat page, whose script fetches the
    token endpoint. Returns that endpoint's JSON as the browser received it (the token is what
    a person could copy from the developer tools: the test replays it later)."""
    with page.expect_response(is_token_response(server)) as answer:
        page.get_by_role("button", name="Log in").click()
    body: dict[str, Any] = answer.value.json()
    return body


def settled(page: Page) -> str:
    """Wait until chat.js is done; return its state (``ready`` or ``error``)."""
    page.wait_for_selector(SETTLED, timeout=REQUEST_DEADLINE * 1000)
    state = page.locator("#chat").get_attribute("data-state")
    assert state is not None
    return state


def expect_ready(page: Page, browsing: Browsing) -> None:
    state = settled(page)
    status = page.locator("#chat-status").inner_text()
    assert state == "ready", f"chat page ended in {state!r}: {status}; {browsing.errors}"


def log_out(page: Page) -> None:
    """Click the app's "Log out" button and wait for the page it leads to."""
    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
