"""Fixtures for the Flask adapter: a fresh app per test, closed afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chatauth.integrations.flask import ChatAuthState
from flask import Flask

from .apps import build_app

AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[AppFactory]:
    """``make_app(config=None, *, ext=None, flask_login=True)``: a new app with its own
    instance folder under ``tmp_path``; every app's httpx client and store are closed at the
    end of the test."""
    apps: list[Flask] = []

    def make(config: dict[str, Any] | None = None, **kwargs: Any) -> Flask:
        kwargs.setdefault("instance_path", str(tmp_path / f"instance-{len(apps)}"))
        app = build_app(config, **kwargs)
        apps.append(app)
        return app

    yield make
    for app in apps:
        state = app.extensions.get("chatauth")
        if isinstance(state, ChatAuthState):
            state.close()


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()
