"""Run a :mod:`chatauth.maintenance` body as a management command: its lines on stdout, its
exit code through ``CommandError`` (the same rule as ``chatauth`` and ``flask chatauth``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError

from chatauth import maintenance
from chatauth.errors import ChatAuthError

from ...conf import ChatAuthImproperlyConfigured


def run(command: Any, work: Callable[[], maintenance.Outcome], *, what: str = "") -> None:
    """Print ``work()``'s lines on ``command.stdout``; raise ``CommandError`` with its exit
    code when it is not 0 (``what`` prefixes the message of a failure)."""
    try:
        outcome = work()
    except ChatAuthImproperlyConfigured as exc:
        raise CommandError(
            f"{exc} ({exc.check_id}; run manage.py check for a hint)",
            returncode=maintenance.EXIT_CONFIG,
        ) from None
    except ChatAuthError as exc:
        raise CommandError(f"{what}{exc}", returncode=maintenance.exit_code_for(exc)) from None
    for line in outcome.lines:
        command.stdout.write(line)
    if outcome.exit_code:
        raise CommandError(outcome.failure or "failed", returncode=outcome.exit_code)
