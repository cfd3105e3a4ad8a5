"""``manage.py chatauth_revoke_pending``: retry queued revocations; end stale sessions."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatauth.errors import ChatAuthError

from ...conf import ChatAuthImproperlyConfigured, get_service
from ...ending import sweep_stale
from ...store import DjangoStore


class Command(BaseCommand):
    help = (
        "Revoke the chat tokens of app sessions that ended without a logout (expired or "
        "flushed: no longer served), then retry revocations that failed earlier. Run it from "
        "cron, e.g. every 10 minutes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=100, help="queued entries per run")
        parser.add_argument("--no-sweep", action="store_true", help="only retry queued revocations")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            chatauth = get_service()
        except ChatAuthImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        try:
            if not options["no_sweep"] and isinstance(chatauth.store, DjangoStore):
                ended, queued = sweep_stale(chatauth, chatauth.store)
                self.stdout.write(f"stale sessions ended: {ended} ({queued} queued)")
            report = chatauth.revoke_pending(limit=options["limit"])
        except ChatAuthError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"revoked: {report.revoked}, failed: {report.failed}, remaining: {report.remaining}"
        )
        if report.failed:
            raise CommandError(f"{report.failed} revocation(s) failed again; still queued.")
