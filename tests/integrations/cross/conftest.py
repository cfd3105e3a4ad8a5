"""Fixtures of the cross-framework suite: the Django settings (as the Django adapter's tests
select them), a ChatKitty emulator and a real SQLite store per test, and one driver per
framework built on them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatauth.testing.chatkitty import ChatKittyEmulator
from chatauth.testing.cometchat import CometChatEmulator

# Selects tests.integrations.django.settings before pytest-django sets Django up (or finishes
# its set-up when this folder is collected after it), exactly as for the Django tests.
from tests.integrations.django.conftest import pytest_configure  # noqa: F401

from .drivers import DRIVERS, BreakableStore, Driver, chat_settings, cometchat_settings


@pytest.fixture
def store(tmp_path: Path) -> Iterator[BreakableStore]:
    # A lock held by another process (BreakableStore.locked) makes a write fail after this
    # many seconds instead of the default 10: the store-down scenarios wait it out per call.
    store = BreakableStore(tmp_path / "chatauth.sqlite3", timeout=2.0)
    yield store
    store.close()


FRAMEWORKS = [
    pytest.param(name, marks=[pytest.mark.django_db] if name == "django" else [])
    for name in sorted(DRIVERS)
]


def _driver(
    request: pytest.FixtureRequest, settings: dict[str, Any], store: BreakableStore
) -> Iterator[Driver]:
    extra: dict[str, Any] = {}
    if request.param == "django":
        extra = {"settings_fixture": request.getfixturevalue("settings")}
    with DRIVERS[request.param](settings, store, **extra) as driver:
        yield driver


@pytest.fixture(params=FRAMEWORKS)
def driver(
    request: pytest.FixtureRequest, chatkitty_emulator: ChatKittyEmulator, store: BreakableStore
) -> Iterator[Driver]:
    """The same app (login, logout, the chat routes) on Django, Flask and Starlette, each
    configured its own way from the same settings, over the same kind of store."""
    yield from _driver(request, chat_settings(chatkitty_emulator), store)


@pytest.fixture(params=FRAMEWORKS)
def revoking_driver(
    request: pytest.FixtureRequest, cometchat_emulator: CometChatEmulator, store: BreakableStore
) -> Iterator[Driver]:
    """:func:`driver` on CometChat, whose tokens are revoked at the provider by a logout."""
    yield from _driver(request, cometchat_settings(cometchat_emulator), store)
