"""``manage.py chatauth_revoke_pending``: retry queued revocations; end stale sessions."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chatauth import maintenance

from ...conf import get_service
from ...ending import sweep_stale
from ...store import DjangoStore
from ._run import add_loop_argument, repeat, run


class Command(BaseCommand):
    help = (
        "Revoke the chat tokens of app sessions that ended without a logout (expired or "
        "flushed: no longer served), then retry revocations that failed earlier. Run it from "
        "cron, e.g. every 10 minutes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=100, help="queued entries per run")
        parser.add_argument("--no-sweep", action="store_true", help="only retry queued revocations")
        add_loop_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        def work() -> maintenance.Outcome:
            chatauth = get_service()
            if not options["no_sweep"] and isinstance(chatauth.store, DjangoStore):
                # The ORM store's own job: it knows which app sessions are gone.
                ended, queued = sweep_stale(chatauth, chatauth.store)
                self.stdout.write(f"stale sessions ended: {ended} ({queued} queued)")
            return maintenance.revoke_pending(chatauth, options["limit"])

        if options["loop"] is None:
            run(self, work)
        else:
            repeat(self, work, options["loop"], "revoke-pending")
