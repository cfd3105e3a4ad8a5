"""How long the test suite waits for real servers: one set of generous deadlines.

The suite runs on 2-core machines that other work keeps busy (CI included): a server that
starts in 1 s on an idle laptop can take 20 s there. Every wait below ends as soon as its
condition holds, so a long deadline costs nothing when things are fast; it only decides how
long a genuinely broken run takes to fail. Tests that *expect* a timeout do not shorten these:
they use a fault that is certain not to answer (``faults.timeout()``), see
tests/providers/test_conformance.py.
"""

from __future__ import annotations

#: From launching a server (process or thread) until it answers its readiness probe.
STARTUP_DEADLINE = 120.0
#: From SIGTERM until the process has exited (SIGKILL after that).
STOP_DEADLINE = 30.0
#: One request to, or one command against, a running real server.
REQUEST_DEADLINE = 60.0
#: A child process that must run to completion (``migrate``, a CLI call, a nested pytest).
COMMAND_DEADLINE = 300.0
#: How many free ports a server is tried on when another process takes the port first.
PORT_ATTEMPTS = 5
