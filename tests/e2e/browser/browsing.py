"""The browser side of the tests: Chromium's flags, the viewports, and :class:`Browsing`,
a browser context that records console errors and saves screenshots."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, ConsoleMessage, Page

from tests.e2e.browser.apps import REPO

# Where the screenshots go: build/screenshots (ignored by git), so a test run leaves the
# checkout clean. The README shows the committed ones in docs/screenshots, refreshed on purpose
# with `tox -e screenshots`, which points E2E_SCREENSHOTS_DIR there.
SCREENSHOTS = Path(os.environ.get("E2E_SCREENSHOTS_DIR") or REPO / "build" / "screenshots")
#: Debian's chromium (apt-get install chromium); CHROMIUM overrides it.
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium phones home (component updates, sync,
# QUIC probes); on a closed network those connections fail and slow every start.
CHROMIUM_ARGS = [
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

#: name -> Playwright context options. The phone is an iPhone 12-14 sized screen.
VIEWPORTS: dict[str, dict[str, Any]] = {
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
    "desktop": {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1},
}


@dataclass
class Browsing:
    """One browser context at one viewport: its pages' console errors and screenshots."""

    context: BrowserContext
    app: str
    viewport: str
    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> Page:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.errors.append(f"console error: {message.text} ({message.location})")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        return page

    def new_page(self) -> Page:
        return self.watch(self.context.new_page())

    def screenshot(self, page: Page, step: str) -> Path:
        """Save ``<SCREENSHOTS>/<app>-<viewport>-<step>.png`` (whole page), after checking
        the page fits the screen's width: a phone user must never scroll sideways (a page
        without ``<meta name="viewport">`` is laid out 980 px wide on a phone and fails)."""
        width = page.viewport_size["width"] if page.viewport_size else 0
        laid_out = page.evaluate("document.documentElement.scrollWidth")
        assert laid_out <= width, f"{step}: the page is {laid_out} px wide on a {width} px screen"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.app}-{self.viewport}-{step}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled")
        return path

    def assert_no_errors(self, *expected: str) -> None:
        """No console errors or page errors, except one per ``expected`` substring (in order
        of appearance), for the failed requests a test provokes on purpose."""
        remaining = list(self.errors)
        for needle in expected:
            match = next((e for e in remaining if needle in e), None)
            assert match is not None, f"expected a console error with {needle!r}: {self.errors}"
            remaining.remove(match)
        assert remaining == [], "\n".join(remaining)
