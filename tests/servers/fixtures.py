"""Pytest plugin with the real-server fixtures.

Loaded by the root conftest (``pytest_plugins = ["tests.servers.fixtures"]``). Session-scoped
servers are shared by every test: a test that needs to stop a server uses a factory fixture
(``synapse_factory``, ``redis_factory``) so the shared one stays up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.servers.postgres import PostgresServer
from tests.servers.processes import ServerProcess
from tests.servers.redis import RedisServer
from tests.servers.synapse import SynapseServer

_S = TypeVar("_S", bound=ServerProcess)

MARKERS = {
    "synapse": "needs a real Matrix Synapse (started by the fixture)",
    "redis": "needs a real redis-server (started by the fixture)",
    "postgres": "needs a real PostgreSQL (started by the fixture)",
}


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too so the plugin works under --strict-markers without our pyproject.
    for name, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")


@pytest.fixture(scope="session")
def synapse() -> Iterator[SynapseServer]:
    """The shared Synapse homeserver (admin token, JWT login enabled). Do not stop it."""
    with SynapseServer() as server:
        yield server


@pytest.fixture
def synapse_factory() -> Iterator[Callable[..., SynapseServer]]:
    """Start a separate, fresh Synapse per call (keyword arguments go to ``SynapseServer``).

    For tests that stop/restart the homeserver; everything started is stopped at teardown.
    """
    yield from _started_servers(SynapseServer)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The shared redis-server. A test that stops it must ``start()`` it again in a finally
    (or use ``redis_factory``)."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_factory() -> Iterator[Callable[[], RedisServer]]:
    """Start a separate redis-server per call; all are stopped at teardown."""
    yield from _started_servers(RedisServer)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The shared PostgreSQL cluster; give each test its own database via
    ``create_database``."""
    with PostgresServer() as server:
        yield server


def _started_servers(server_class: Callable[..., _S]) -> Iterator[Callable[..., _S]]:
    """Yield ``start(**kwargs)`` (a new ``server_class(**kwargs)``, started); at the end stop
    every server it started, even if one of them fails to stop, then raise the first failure."""
    started: list[_S] = []

    def start(**kwargs: Any) -> _S:
        server = server_class(**kwargs)
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        errors: list[BaseException] = []
        for server in reversed(started):
            try:
                server.cleanup()
            except BaseException as exc:  # re-raised below, after the others are stopped
                errors.append(exc)
        if errors:
            raise errors[0]
