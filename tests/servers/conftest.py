"""Load the server fixtures when no root conftest did (running ``tests/servers`` alone)."""

from __future__ import annotations

import pytest

PLUGIN = "tests.servers.fixtures"


def pytest_configure(config: pytest.Config) -> None:
    # Registering under the same name the root conftest's pytest_plugins uses means the
    # plugin, and so each session-scoped server, exists once either way.
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)
