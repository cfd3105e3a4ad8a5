"""``manage.py chatauth_check``: reach the provider with the configured secret."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from chatauth.errors import ChatAuthError

from ...conf import ChatAuthImproperlyConfigured, get_service


class Command(BaseCommand):
    help = "Reach the chat provider with the CHATAUTH settings and report what works."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            chatauth = get_service()
        except ChatAuthImproperlyConfigured as exc:
            raise CommandError(f"{exc} ({exc.check_id}; run manage.py check for a hint)") from None
        self.stdout.write(f"provider: {chatauth.provider.name}")
        self.stdout.write(f"store: {chatauth.store!r}")
        self.stdout.write(f"token_ttl: {int(chatauth.token_ttl.total_seconds())} s")
        try:
            facts = chatauth.check()
        except ChatAuthError as exc:
            raise CommandError(f"The provider check failed: {exc}") from None
        for key, value in facts.items():
            self.stdout.write(f"{key}: {value}")
        try:
            pending = chatauth.store.count_pending()
        except ChatAuthError as exc:
            raise CommandError(f"The token store failed: {exc}") from None
        self.stdout.write(f"pending revocations: {pending}")
        self.stdout.write(self.style.SUCCESS("chatauth: OK"))
