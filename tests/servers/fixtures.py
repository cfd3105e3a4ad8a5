"""Pytest plugin with the real-server fixtures.

Loaded by the root conftest (``pytest_plugins = ["tests.servers.fixtures"]``). Session-scoped
servers are shared by every test: a test that needs to stop a server uses a factory fixture
(``synapse_factory``, ``redis_factory``) so the shared one stays up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer
from tests.servers.synapse import SynapseServer

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
    server = SynapseServer()
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture
def synapse_factory() -> Iterator[Callable[..., SynapseServer]]:
    """Start a separate, fresh Synapse per call (keyword arguments go to ``SynapseServer``).

    For tests that stop/restart the homeserver; everything started is stopped at teardown.
    """
    started: list[SynapseServer] = []

    def start(**kwargs: Any) -> SynapseServer:
        server = SynapseServer(**kwargs)
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        _cleanup_all(started)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The shared redis-server. A test that stops it must ``start()`` it again in a finally
    (or use ``redis_factory``)."""
    server = RedisServer()
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture
def redis_factory() -> Iterator[Callable[[], RedisServer]]:
    """Start a separate redis-server per call; all are stopped at teardown."""
    started: list[RedisServer] = []

    def start() -> RedisServer:
        server = RedisServer()
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        _cleanup_all(started)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The shared PostgreSQL cluster; give each test its own database via
    ``create_database``."""
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.cleanup()


def _cleanup_all(servers: Sequence[SynapseServer | RedisServer]) -> None:
    # Stop every server even if one of them fails to stop, then report the first failure.
    errors: list[BaseException] = []
    for server in reversed(servers):
        try:
            server.cleanup()
        except BaseException as exc:  # re-raised below, after the others are stopped
            errors.append(exc)
    if errors:
        raise errors[0]
