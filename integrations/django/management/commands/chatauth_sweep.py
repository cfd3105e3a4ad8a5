"""``manage.py chatauth_sweep``: end chat sessions nobody is served any more (the core's
``chatauth sweep``: same work, output and exit codes), and first those whose Django session
is gone (:func:`~chatauth.integrations.django.ending.end_gone`), reported on a line of its
own: ``sessions-gone: ended=N queued=N``."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chatauth import maintenance

from ...conf import get_service
from ...ending import end_gone
from ._run import add_loop_argument, repeat, run


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = (
        "End the chat sessions nobody is served any more: those whose Django session is gone "
        "(database session backends), not served for SESSION_IDLE seconds (default "
        "SESSION_COOKIE_AGE) or past their re-issue time, and logouts a down store missed "
        "(the journal). Then retry queued revocations. Run it from cron; exits 1 while "
        "revocations stay queued."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--idle", type=_positive, default=None, help="seconds (default: SESSION_IDLE)"
        )
        parser.add_argument("--limit", type=int, default=1000, help="most tokens per run")
        add_loop_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["loop"] is None:
            run(self, lambda: sweep(options["idle"], options["limit"]))
        else:
            repeat(self, lambda: sweep(options["idle"], options["limit"]), options["loop"], "sweep")


def sweep(idle: float | None, limit: int) -> maintenance.Outcome:
    """The chat sessions of gone Django sessions first, then the core sweep (whose
    ``revoke-pending`` retries the revocations the first part queued)."""
    service = get_service()
    gone = end_gone(service, limit)
    outcome = maintenance.sweep(service, idle, limit)
    if gone is None:
        return outcome
    line = f"sessions-gone: ended={gone[0]} queued={gone[1]}"
    return dataclasses.replace(outcome, lines=(line, *outcome.lines))
