"""One module per provider, each defining one fixture ``harness_<module name>`` that yields a
:class:`tests.providers.conformance.Harness` wired to that provider's emulator or server.
and a function ``offline(url)`` building the provider against any URL (the hostile-answers
property answers its requests itself). ``tests/providers/conftest.py`` discovers them: adding a
module adds the provider to the conformance suite and the properties."""
