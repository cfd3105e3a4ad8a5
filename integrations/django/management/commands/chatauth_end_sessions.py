"""``manage.py chatauth_end_sessions --user <username>``: end all of a user's chat sessions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatauth import maintenance

from ...conf import get_service
from ._run import run


class Command(BaseCommand):
    help = "End every chat session of one app user (revoking the tokens at the provider)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="the user's username (USERNAME_FIELD)")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(options["user"])
        except user_model.DoesNotExist:
            raise CommandError(
                f"No user {options['user']!r}.", returncode=maintenance.EXIT_CONFIG
            ) from None
        run(self, lambda: maintenance.end_sessions(get_service(), user))
