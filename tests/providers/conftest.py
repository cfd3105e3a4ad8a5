"""Discovers the harness modules and offers the parametrised ``harness`` fixture."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from tests.providers import harnesses

PROVIDER_NAMES = sorted(m.name for m in pkgutil.iter_modules(harnesses.__path__))
HTTP_PROVIDER_NAMES = []

for _name in PROVIDER_NAMES:
    # Each module defines a fixture named harness_<name>; pytest collects fixtures from this
    # module's globals, so importing them here is what registers them.
    _module = importlib.import_module(f"{harnesses.__name__}.{_name}")
    globals()[f"_harness_{_name}"] = _module.__dict__[f"harness_{_name}"]
    # Providers that mint locally (MAKES_HTTP_CALLS = False) have no transport to fail.
    if getattr(_module, "MAKES_HTTP_CALLS", True):
        HTTP_PROVIDER_NAMES.append(_name)


@pytest.fixture(params=PROVIDER_NAMES)
def harness(request: pytest.FixtureRequest) -> object:
    """Every provider."""
    return request.getfixturevalue(f"harness_{request.param}")


@pytest.fixture(params=HTTP_PROVIDER_NAMES)
def http_harness(request: pytest.FixtureRequest) -> object:
    """Every provider that calls its server over HTTP (and so has faults to inject)."""
    return request.getfixturevalue(f"harness_{request.param}")
