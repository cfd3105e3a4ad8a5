"""One OS process of the race tests: ``python -m tests.integrations.django.race_worker CONFIG``.

CONFIG is JSON: ``{"databases": {...}, "chatauth": {...}, "gate": <dir>, "migrate": bool}``.
The worker sets Django up with those settings, writes ``<gate>/ready-<pid>``, waits for
``<gate>/go`` (so that the processes ask at the same moment, however long their start-up
took), asks for the chat session of one fixed user and app session, and prints the token's
fingerprint.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


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
    from chatauth.integrations.django.conf import get_chatauth

    from chatauth.identity import ChatIdentity

    chatauth = get_chatauth()
    gate = Path(config["gate"])
    (gate / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while not (gate / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    session = chatauth.get_session(ChatIdentity("user-race"), "one-app-session")
    print(session.token.fingerprint, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
