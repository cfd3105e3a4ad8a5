"""Root fixtures: the real-server fixtures, the emulator fixtures, and instant retries."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import stamina
from hypothesis import settings

# Property tests: a modest default for the shared 2-core machines and CI (each property runs
# max_examples examples); HYPOTHESIS_PROFILE=deep for a long local fuzzing run.
settings.register_profile("default", max_examples=60, deadline=None)
settings.register_profile("deep", max_examples=5_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

pytest_plugins = [
    "tests.canary",
    "tests.interrupt",
    "tests.servers.fixtures",
    "tests.servers.topology_fixtures",
    "chatauth.testing.pytest_plugin",
]


@pytest.fixture(autouse=True)
def _instant_retries() -> Iterator[None]:
    """Retries still happen (3 attempts) but without backoff sleeps, so failure paths are fast.

    Tests of the waiting itself call the backoff hook directly instead of timing sleeps.
    """
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


@pytest.fixture
def real_retries() -> Iterator[list[stamina.instrumentation.RetryDetails]]:
    """stamina as in production (the suite's instant-retry mode off), every retry recorded."""
    seen: list[stamina.instrumentation.RetryDetails] = []
    stamina.set_testing(False)
    stamina.instrumentation.set_on_retry_hooks([seen.append])
    try:
        yield seen
    finally:
        stamina.instrumentation.set_on_retry_hooks(None)
