"""Fixtures for the browser tests: Debian's Chromium through Playwright, the sample apps as
real server processes, and a page that records console errors and takes screenshots."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.browser.apps import AppServers

try:
    from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright
    from playwright.sync_api import Error as PlaywrightError
except ImportError:  # pragma: no cover - depends on the environment
    pytest.fail(
        "The browser tests need Playwright: pip install playwright (the browser itself is "
        "Debian's chromium; never run 'playwright install').",
        pytrace=False,
    )

from tests.e2e.browser.browsing import CHROMIUM, CHROMIUM_ARGS, VIEWPORTS, Browsing
from tests.e2e.browser.sdks.build import SDKBuildError, build
from tests.servers.deadlines import REQUEST_DEADLINE


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: apt-get install chromium (or set CHROMIUM).",
            pytrace=False,
        )
    args = list(CHROMIUM_ARGS)
    if os.geteuid() == 0:  # Chromium refuses to run as root with its sandbox on
        args.append("--no-sandbox")
    # Playwright gives every launch a fresh temporary --user-data-dir of its own.
    instance = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def browsing_factory(browser: Browser) -> Iterator[Callable[[str, str], Browsing]]:
    """``browsing(app, viewport)``: a fresh context (no cookies) at that viewport."""
    contexts: list[BrowserContext] = []

    def make(app: str, viewport: str) -> Browsing:
        context = browser.new_context(**VIEWPORTS[viewport], locale="en-US")
        # Playwright counts milliseconds; every wait ends as soon as its condition holds.
        context.set_default_timeout(REQUEST_DEADLINE * 1000)
        contexts.append(context)
        return Browsing(context, app, viewport)

    try:
        yield make
    finally:
        for context in contexts:
            # The browser may have gone away already: then there is nothing left to close.
            with contextlib.suppress(PlaywrightError):
                context.close()


@pytest.fixture(scope="session")
def app_servers() -> Iterator[AppServers]:
    servers = AppServers()
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture(scope="session")
def sdk_bundles() -> Path:
    """The official chat SDKs from npm, bundled for the browser (built once, then cached)."""
    try:
        return build()
    except SDKBuildError as exc:
        pytest.fail(str(exc), pytrace=False)
