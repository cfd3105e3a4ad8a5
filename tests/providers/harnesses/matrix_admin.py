"""Matrix in admin mode against a real Synapse (through a fault-injecting proxy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.providers.conformance import Harness
from tests.providers.matrix_proxy import matrix_harness
from tests.servers.synapse import SynapseServer


@pytest.fixture(name="harness_matrix_admin")
def harness_matrix_admin(synapse: SynapseServer) -> Iterator[Harness]:
    yield from matrix_harness(synapse, "admin")
