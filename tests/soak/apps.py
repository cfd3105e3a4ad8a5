"""The sample apps as the soak runs them: their own code and settings, except that the demo
users' passwords are hashed with a cheap work factor.

A login checks the password the way the app always does (Django's ``authenticate``, Werkzeug's
``check_password_hash``); only the key stretching is shortened, as Django's own testing guide
advises for test runs (its MD5 hasher). The soak is about chat sessions: with production
work factors (PBKDF2 with a million rounds, scrypt) most of its time went into hashing
the demo passwords on a 2-core machine. The Starlette sample compares plain demo passwords
and is run as it is.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from tests.e2e.browser.apps import REPO, SAMPLE_APPS, SampleApp

__all__ = ["SOAK_APPS"]


def _django_env(workdir: Path) -> dict[str, str]:
    path = os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))
    return {
        **SAMPLE_APPS["django"].extra_env(workdir),
        "DJANGO_SETTINGS_MODULE": "tests.soak.django_settings",
        "PYTHONPATH": path,
    }


def _flask_commands(port: int) -> list[list[str]]:
    [command] = SAMPLE_APPS["flask"].commands(port)
    command = list(command)
    command[command.index("sample_projects.flask_app")] = "tests.soak.flask_app"
    return [command]


SOAK_APPS: dict[str, SampleApp] = {
    "django": dataclasses.replace(SAMPLE_APPS["django"], extra_env=_django_env),
    "flask": dataclasses.replace(SAMPLE_APPS["flask"], commands=_flask_commands),
    "starlette": SAMPLE_APPS["starlette"],
}
