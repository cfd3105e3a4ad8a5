"""A blank page under a sample app's own origin from which a test drives an official chat SDK.

:func:`serve_sdks` makes the browser context answer ``<app>/__sdk/page.html`` (an empty page)
``<app>/__sdk/<name>.js`` (the SDK bundles of :mod:`tests.e2e.browser.sdks.build`) and
``<app>/__sdk/scenarios/<name>.mjs`` (the tests' own scripts, in ``sdks/scenarios``) itself,
through Playwright's request routing: the app never serves them, yet the page shares the app's
origin, so its ``fetch`` of the token endpoint carries the session cookie exactly as the app's
own chat page does. Everything else the page loads goes to the real servers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Page, Route

from tests.e2e.browser import flows
from tests.e2e.browser.apps import AppServer
from tests.e2e.browser.browsing import Browsing

#: Where the page and the bundles appear under the app's origin.
PREFIX = "/__sdk/"
SCENARIOS = Path(__file__).resolve().parent / "sdks" / "scenarios"


def serve_sdks(context: BrowserContext, base_url: str, bundles: Path) -> None:
    """Answer ``base_url + PREFIX + ...`` from ``bundles`` in ``context`` (404 for the rest),
    and the sample's ``chat.js`` with an empty script."""

    def answer(route: Route) -> None:
        name = urlsplit(route.request.url).path.removeprefix(PREFIX)
        folder, _, file = name.rpartition("/")
        path = {"": bundles, "scenarios": SCENARIOS}.get(folder, Path("/nonexistent")) / file
        if file.endswith((".js", ".mjs")) and path.is_file():
            route.fulfill(status=200, path=str(path), content_type="text/javascript")
            return
        route.fulfill(status=404, body=b"not found", content_type="text/plain")

    context.route(base_url + PREFIX + "**", answer)

    def no_sample_script(route: Route) -> None:
        route.fulfill(status=200, body=b"", content_type="text/javascript")

    context.route(base_url + "/**/chat.js", no_sample_script)


def open_sdk_page(browsing: Browsing, server: AppServer, bundles: Path) -> tuple[Page, str]:
    """Log in through the app's form and land on its chat page, where the SDK stands in for
    the sample's script; returns the page and the token endpoint's path (from the page)."""
    serve_sdks(browsing.context, server.base_url, bundles)
    page = browsing.new_page()
    flows.fill_login(page, server)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    token_url = page.locator("#chat").get_attribute("data-token-url")
    assert token_url, "the chat page names no token endpoint"
    return page, token_url


def run_scenario(page: Page, name: str, function: str, args: dict[str, Any]) -> Any:
    """``(await import("/__sdk/scenarios/<name>.mjs"))[function](args)`` in the page."""
    return page.evaluate(
        "async ([module, fn, args]) => (await import(module))[fn](args)",
        [f"/__sdk/scenarios/{name}.mjs", function, args],
    )


def sdk_version(bundles: Path, name: str) -> str:
    """The npm version of the SDK bundled as ``name`` (``"matrix"``, ``"stream"``, ...)."""
    versions: dict[str, str] = json.loads((bundles / "versions.json").read_text())
    return versions[name]
