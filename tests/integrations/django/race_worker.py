"""One OS process of the race tests: ``python -m tests.integrations.django.race_worker CONFIG``.

CONFIG is JSON: ``{"databases": {...}, "chatauth": {...}, "migrate": bool}``. The worker sets
Django up with those settings (``"migrate": true``: creates the tables and exits), then follows
the gate protocol of :mod:`tests.stores.workers` (prints ``ready``, waits for ``go`` on stdin,
so that the processes ask at the same moment however long their start-up took), asks for the
chat session of one fixed user and app session, and prints the token's fingerprint.

Its store is the ORM store, observed: it reports its first lock taken and first lock found
taken into ``CHATAUTH["HANDSHAKE_DIR"]`` (:class:`tests.stores.handshake.ReportsLock`), which
:class:`tests.integrations.django.providers.CountingJWTProvider` waits for.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _observed_store(handshake_dir: str) -> Any:
    from chatauth.integrations.django.store import DjangoStore

    from tests.stores.handshake import ReportsLock

    class ObservedStore(ReportsLock, DjangoStore):
        """The ORM store, unchanged, reporting its lock attempts (tests.stores.handshake)."""

    store = ObservedStore()
    store.handshake_dir = handshake_dir
    return store


def main(raw: str) -> None:
    config = json.loads(raw)
    import django
    from django.conf import settings

    settings.configure(
        DATABASES=config["databases"],
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "chatauth.integrations.django",
        ],
        USE_TZ=True,
        CHATAUTH=config["chatauth"],
    )
    django.setup()
    if config.get("migrate"):
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        return
    from chatauth.integrations.django.conf import build_chatauth

    from chatauth.identity import ChatIdentity

    # The adapter's own ChatAuth from CHATAUTH, with the observed ORM store in place of the
    # plain one.
    chatauth = build_chatauth(store=_observed_store(config["chatauth"]["HANDSHAKE_DIR"]))
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return  # the test gave up before the start
    session = chatauth.get_session(ChatIdentity("user-race"), "one-app-session")
    print(session.token.fingerprint, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
