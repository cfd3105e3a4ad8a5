"""``manage.py chatauth_sweep``: end chat sessions nobody is served any more (the core's
``chatauth sweep``: same work, output and exit codes)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chatauth import maintenance

from ...conf import get_service
from ._run import run


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = (
        "End the chat sessions nobody is served any more: not served for SESSION_IDLE "
        "seconds (default SESSION_COOKIE_AGE) or past their re-issue time, and logouts a "
        "down store missed (the journal). Then retry queued revocations. Run it from cron; "
        "exits 1 while revocations stay queued."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--idle", type=_positive, default=None, help="seconds (default: SESSION_IDLE)"
        )
        parser.add_argument("--limit", type=int, default=1000, help="most tokens per run")

    def handle(self, *args: Any, **options: Any) -> None:
        run(self, lambda: maintenance.sweep(get_service(), options["idle"], options["limit"]))
