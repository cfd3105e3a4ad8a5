"""The Django app: ``INSTALLED_APPS += ["chatauth.integrations.django"]``."""

from __future__ import annotations

import contextlib
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.signals import setting_changed
from django.utils.translation import gettext_lazy as _

__all__ = ["ChatAuthConfig"]


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "CHATAUTH":
        from .conf import reset

        reset()


class ChatAuthConfig(AppConfig):
    """Registers the system checks and the logout/password-change receivers, and reads
    ``CHATAUTH`` once at start-up.

    A broken ``CHATAUTH`` does not stop ``ready()``: ``manage.py check`` (and ``runserver``,
    which runs the checks) then names the problem with a ``chatauth.E0xx`` id, and the
    middleware refuses to load with the same message.
    """

    name = "chatauth.integrations.django"
    label = "chatauth"
    verbose_name = _("Chat sessions")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks as chatauth_checks
        from . import signals
        from .conf import ChatAuthImproperlyConfigured, get_service

        checks.register(chatauth_checks.check_settings, "chatauth")
        checks.register(chatauth_checks.check_middleware, "chatauth")
        signals.connect()
        setting_changed.connect(_settings_changed, dispatch_uid="chatauth.settings")
        # A broken CHATAUTH is reported by the system checks; the middleware raises it.
        with contextlib.suppress(ChatAuthImproperlyConfigured):
            get_service()
