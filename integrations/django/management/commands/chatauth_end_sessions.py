"""``manage.py chatauth_end_sessions --user <username>``: end all of a user's chat sessions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatauth.errors import ChatAuthError

from ...conf import ChatAuthImproperlyConfigured, get_service


class Command(BaseCommand):
    help = "End every chat session of one app user (revoking the tokens at the provider)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="the user's username (USERNAME_FIELD)")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(options["user"])
        except user_model.DoesNotExist:
            raise CommandError(f"No user {options['user']!r}.") from None
        try:
            ended = get_service().end_all_sessions(user)
        except (ChatAuthImproperlyConfigured, ChatAuthError) as exc:
            raise CommandError(str(exc)) from None
        pending = get_service().store.count_pending()
        self.stdout.write(
            f"Ended {len(ended)} chat session(s) of {options['user']}; "
            f"{pending} revocation(s) pending overall."
        )
