"""Fixtures of the Django adapter's tests.

Django settings: ``tests.integrations.django.settings``, selected by tox through
``DJANGO_SETTINGS_MODULE``; when a plain ``pytest`` run reaches this folder without it, the
settings are selected here, before pytest-django sets Django up.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

SETTINGS = "tests.integrations.django.settings"
SERVERS_PLUGIN = "tests.servers.fixtures"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(SERVERS_PLUGIN):
        config.pluginmanager.import_plugin(SERVERS_PLUGIN)
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        return
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    from django.conf import settings

    settings.DATABASES  # noqa: B018 - loads the settings module now
    # As an initial conftest (pytest run on this folder) pytest-django's pytest_configure runs
    # after this one and sets Django up. Found later, during collection, its pytest_configure
    # has already run and found no settings: finish its set-up the way it would have.
    import django.apps

    if not django.apps.apps.ready:
        from pytest_django.plugin import _setup_django

        _setup_django(config)


@pytest.fixture
def chatauth(settings: object):
    """The adapter's ChatAuth, rebuilt from the current (possibly overridden) settings."""
    from chatauth.integrations.django.conf import get_service, reset

    reset()
    yield get_service()
    reset()


@pytest.fixture
def mapped_users(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[object]]:
    """Call it once the service is configured: from then on the users its mapper is handed
    are appended to the list it returns (the mapper still maps them)."""

    def record() -> list[object]:
        from chatauth.integrations.django.conf import get_service

        service = get_service()
        mapper = service.mapper
        seen: list[object] = []

        def recording(app_user: object) -> object:
            seen.append(app_user)
            return mapper(app_user)

        monkeypatch.setattr(service, "mapper", recording)
        return seen

    return record


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-password")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-password")


ROUTER = "tests.integrations.django.routers.ChatAuthRouter"


def add_database(alias: str, config: dict[str, Any]) -> None:
    """Register a database alias at run time (the PostgreSQL port is only known now)."""
    from django.db import connections

    connections.settings[alias] = connections.configure_settings({"default": {}, alias: config})[
        alias
    ]


@pytest.fixture(scope="session")
def postgres_alias(postgres_server: Any, django_db_blocker: Any) -> Iterator[str]:
    """A PostgreSQL database for chatauth's tables, reached through ``ChatAuthRouter``: one
    per test session, shared by every module (a second would re-point the alias)."""
    from django.core.management import call_command
    from django.db import connections
    from django.test import override_settings

    from tests.integrations.django.routers import ChatAuthRouter

    name = f"chatauth_django_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(name)
    add_database(
        ChatAuthRouter.alias,
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": postgres_server.user,
            "HOST": postgres_server.host,
            "PORT": str(postgres_server.port),
        },
    )
    with django_db_blocker.unblock(), override_settings(DATABASE_ROUTERS=[ROUTER]):
        call_command("migrate", "chatauth", database=ChatAuthRouter.alias, verbosity=0)
    yield ChatAuthRouter.alias
    with django_db_blocker.unblock():
        connections[ChatAuthRouter.alias].close()
