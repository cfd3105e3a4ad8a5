"""``manage.py chatauth_chat_user {update,deactivate,erase} --user <username> | --uid <uid>``:
keep the chat user in step with the app user at the provider."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatauth import maintenance
from chatauth.chat_users import OPERATIONS
from chatauth.identity import ChatIdentity

from ...conf import get_service
from ._run import run


class Command(BaseCommand):
    help = (
        "Update (display name, avatar), deactivate or erase one chat user at the provider; "
        "deactivate and erase end every chat session of the user first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("operation", choices=OPERATIONS)
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", help="the app user's username (USERNAME_FIELD)")
        who.add_argument(
            "--uid", help="the chat UID, for an app user already deleted (erase, deactivate)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user: Any
        if options["uid"]:
            if options["operation"] == "update":
                raise CommandError(
                    "update needs --user: the profile comes from the app user.",
                    returncode=maintenance.EXIT_CONFIG,
                )
            user = ChatIdentity(options["uid"])
        else:
            user_model = get_user_model()
            try:
                user = user_model._default_manager.get_by_natural_key(options["user"])
            except user_model.DoesNotExist:
                raise CommandError(
                    f"No user {options['user']!r}.", returncode=maintenance.EXIT_CONFIG
                ) from None
        run(self, lambda: maintenance.chat_user(get_service(), options["operation"], user))
