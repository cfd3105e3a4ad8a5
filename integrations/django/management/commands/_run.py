"""Run a :mod:`chatauth.maintenance` body as a management command: its lines on stdout, its
exit code through ``CommandError`` (the same rule as ``chatauth`` and ``flask chatauth``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError

from chatauth import maintenance
from chatauth.errors import ChatAuthError

from ...conf import ChatAuthImproperlyConfigured


def add_loop_argument(parser: Any) -> None:
    """``--loop SECONDS``: a worker instead of cron (:func:`repeat`)."""
    parser.add_argument(
        "--loop",
        type=_positive,
        default=None,
        metavar="SECONDS",
        help="keep running, one run every SECONDS, until SIGTERM/SIGINT",
    )


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError(text)
    return value


def repeat(command: Any, work: Callable[[], maintenance.Outcome], every: float, name: str) -> None:
    """Run ``work`` every ``every`` seconds until SIGTERM/SIGINT, each run's lines on
    ``command.stdout``; an outage goes to ``command.stderr`` and the loop goes on."""

    def once() -> None:
        outcome = work()
        for line in outcome.lines:
            command.stdout.write(line)
        if outcome.failure:
            command.stderr.write(outcome.failure)
        command.stdout.flush()

    def report(exc: ChatAuthError) -> None:
        command.stderr.write(f"{name}: {exc}")
        command.stderr.flush()

    try:
        maintenance.loop(once, every, report)
    except ChatAuthImproperlyConfigured as exc:
        raise CommandError(
            f"{exc} ({exc.check_id}; run manage.py check for a hint)",
            returncode=maintenance.EXIT_CONFIG,
        ) from None
    except ChatAuthError as exc:
        raise CommandError(str(exc), returncode=maintenance.exit_code_for(exc)) from None


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
