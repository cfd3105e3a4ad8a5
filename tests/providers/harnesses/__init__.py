"""One module per provider, each defining one fixture ``harness_<module name>`` that yields a
:class:`tests.providers.conformance.Harness` wired to that provider's emulator or server.
``tests/providers/conftest.py`` discovers them: adding a module adds the provider to the
conformance suite."""
