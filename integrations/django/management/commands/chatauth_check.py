"""``manage.py chatauth_check``: reach the provider with the configured secret."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from chatauth import maintenance

from ...conf import get_service
from ._run import run


class Command(BaseCommand):
    help = "Reach the chat provider with the CHATAUTH settings and report what works."

    def handle(self, *args: Any, **options: Any) -> None:
        run(self, lambda: maintenance.check(get_service()), what="The provider check failed: ")
        self.stdout.write(self.style.SUCCESS("chatauth: OK"))
