"""Matrix in jwt mode against a real Synapse (through a fault-injecting proxy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatauth.providers.matrix import MatrixProvider
from tests.providers.conformance import Harness
from tests.providers.matrix_proxy import matrix_harness, offline_matrix
from tests.servers.synapse import SynapseServer


def offline(url: str) -> MatrixProvider:
    """The provider wired to ``url`` with test credentials, for the properties that
    answer its requests themselves (tests/providers/test_hostile_answers.py)."""
    return offline_matrix(url, "jwt")


@pytest.fixture(name="harness_matrix_jwt")
def harness_matrix_jwt(synapse: SynapseServer) -> Iterator[Harness]:
    yield from matrix_harness(synapse, "jwt")
